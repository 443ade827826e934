import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { MODELS_DIR, REPO } from './service';

/**
 * The service as it really runs: `node dist/main.js` in its own process (npm test builds
 * dist/ first), so its event loop is not shared with the test's clients. Resolves once the
 * process logs "ready"; its JSON log lines are collected in `lines`.
 */
export interface ServerProcess {
  proc: ChildProcess;
  httpPort: number;
  grpcPort: number;
  lines: Record<string, any>[];
  /** What the process wrote to stderr so far (a native abort prints there). */
  stderr(): string;
  /** Sends the signal and resolves with the exit code (null when a signal ended it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [path.join(REPO, 'dist', 'main.js')], {
    env: {
      ...process.env,
      MODELS_DIR,
      HOST: '127.0.0.1',
      PORT: '0',
      GRPC_PORT: '0',
      LOG_LEVEL: 'info',
      ORT_INTRA_OP_THREADS: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, any>[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let stderr = '';
  proc.stderr?.on('data', (c) => (stderr += c));
  return new Promise((resolve, reject) => {
    let pending = '';
    let ports: { httpPort: number; grpcPort: number } | undefined;
    const timer = setTimeout(
      () => reject(new Error(`server not ready after 60 s: ${stderr}`)),
      60_000,
    );
    proc.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const text of parts.filter(Boolean)) {
        const line = JSON.parse(text);
        lines.push(line);
        if (line.msg === 'listening') ports = { httpPort: line.httpPort, grpcPort: line.grpcPort };
        if (line.msg === 'ready' && ports) {
          clearTimeout(timer);
          resolve({
            proc,
            ...ports,
            lines,
            stderr: () => stderr,
            stop(signal = 'SIGTERM') {
              if (proc.exitCode === null) proc.kill(signal);
              return exited;
            },
          });
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before ready: ${stderr}`));
    });
  });
}
