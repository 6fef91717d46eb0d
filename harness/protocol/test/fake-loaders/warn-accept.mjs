// Accepts anything: warns on stderr (as an engine falling back to another placement does), then writes a readable output.
process.stderr.write('warning: expert placement round_robin not supported, falling back to linear\n');
await import('./echo.mjs');
