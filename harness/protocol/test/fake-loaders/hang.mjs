// Never finishes, and starts a grandchild that never finishes either: the timeout must kill both.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
if (process.env.GRANDCHILD_PID_FILE) writeFileSync(process.env.GRANDCHILD_PID_FILE, String(child.pid));
process.stderr.write('loading forever\n');
setInterval(() => {}, 1000);
