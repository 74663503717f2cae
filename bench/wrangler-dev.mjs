// A bench's own Worker (a floor, never deployed) in a `wrangler dev` of its own beside the stack:
// on a random local port, in a process group of its own (stopped as one, and its processes told
// apart from the stack's), stopped when the bench ends however it ends.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const LOCAL_WRANGLER = fileURLToPath(new URL('../node_modules/.bin/wrangler', import.meta.url));
const WRANGLER = existsSync(LOCAL_WRANGLER) ? LOCAL_WRANGLER : 'wrangler';

/** Every Worker started and not yet stopped. */
const running = new Set();
process.on('exit', () => {
  for (const worker of running) worker.kill();
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/**
 * Starts the Worker of `config` with its state under `persistTo` (and `--env env`), and waits
 * until `ready(url)` resolves true (a minute at most). Resolves to the Worker: its `url`, its
 * process group's `pid`, its output so far (`log`), `kill()` and `stop()` (which waits until none
 * of its processes is left).
 */
export async function startWranglerDev(config, { persistTo, env, ready }) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const args = ['dev', '-c', config, '--local', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistTo, '--show-interactive-dev-session=false'];
  if (env) args.push('--env', env);
  const child = spawn(WRANGLER, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', ...process.env },
  });
  const worker = {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    log: '',
    kill() {
      try {
        process.kill(-child.pid);
      } catch {
        // already gone
      }
    },
    async stop() {
      worker.kill();
      try {
        for (let waited = 0; waited < 10_000; waited += 100) {
          process.kill(-child.pid, 0); // throws once the group is empty
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } catch {
        // gone
      }
      running.delete(worker);
    },
  };
  running.add(worker);
  child.stdout.on('data', (chunk) => (worker.log += chunk));
  child.stderr.on('data', (chunk) => (worker.log += chunk));
  for (let waited = 0; ; waited += 500) {
    if (await ready(worker.url).catch(() => false)) return worker;
    if (waited > 60_000 || child.exitCode !== null) throw new Error(`the wrangler dev of ${config} did not start:\n${worker.log}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
