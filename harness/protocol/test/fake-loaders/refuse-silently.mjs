// Exits 1 on every call without a word on stderr: not a refusal the harness can count (spec §2.1).
process.exit(1);
