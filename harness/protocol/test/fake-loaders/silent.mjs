// Exits 0 without writing its output file.
process.stderr.write('done (not really)\n');
