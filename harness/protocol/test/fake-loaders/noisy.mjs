// Refuses after writing far more stderr than the harness keeps; the reason is at the end.
process.stderr.write('x'.repeat(1 << 20) + '\nthe real reason\n', () => process.exit(1));
