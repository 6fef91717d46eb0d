// Dies from a signal, as a segfaulting native loader would.
process.stderr.write('about to crash\n');
process.kill(process.pid, 'SIGSEGV');
