// Refuses like a conforming loader does: a reason on stderr and a non-zero exit.
process.stderr.write('refused: expert 3 of layer 0 is missing\n');
process.exit(3);
