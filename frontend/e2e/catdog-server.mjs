// Runs the real `catdog serve` for the browser tests: a fresh data directory,
// a folder source of dev photos copied from ../shared, and the built page.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FRONTEND_DIR = fileURLToPath(new URL('..', import.meta.url));
export const WEB_DIR = path.join(FRONTEND_DIR, 'build');
export const RESULTS_DIR = path.join(FRONTEND_DIR, 'test-results');
/** The classifier's model, built by model/build.sh (relative paths are the repository's). */
export const MODEL_DIR = path.resolve(FRONTEND_DIR, '..', process.env.MODEL_DIR ?? '.cache/model');
/** The team's dev photos: `../shared` beside the repository's root. */
export const DEV_IMAGES = path.resolve(FRONTEND_DIR, '../../shared/data/images/dev');

/** Where the server binary is: $CATDOG_BIN, else the cargo target dir's debug build. */
export function catdogBinary() {
	if (process.env.CATDOG_BIN) return path.resolve(FRONTEND_DIR, process.env.CATDOG_BIN);
	const target = process.env.CARGO_TARGET_DIR ?? '../target';
	return path.resolve(FRONTEND_DIR, target, 'debug', 'catdog');
}

export async function freePort() {
	return new Promise((resolve, reject) => {
		const probe = net.createServer();
		probe.once('error', reject);
		probe.listen(0, '127.0.0.1', () => {
			const address = probe.address();
			probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
		});
	});
}

/**
 * Copies the first `counts[category]` dev photos of each category into `dir`
 * (sorted by name, so every run sees the same ones). Returns the copied names.
 */
export async function copyDevPhotos(dir, counts, skip = {}) {
	await mkdir(dir, { recursive: true });
	const copied = [];
	for (const [category, count] of Object.entries(counts)) {
		const names = (await readdir(path.join(DEV_IMAGES, category))).sort();
		const start = skip[category] ?? 0;
		for (const name of names.slice(start, start + count)) {
			await copyFile(path.join(DEV_IMAGES, category, name), path.join(dir, name));
			copied.push(name);
		}
	}
	return copied;
}

export class CatdogServer {
	/**
	 * @param {{ name: string, sourcesDir: string, env?: Record<string, string> }} options
	 */
	constructor({ name, sourcesDir, env = {} }) {
		this.name = name;
		this.sourcesDir = sourcesDir;
		this.extraEnv = env;
		this.process = null;
		this.port = 0;
		this.dataDir = '';
	}

	get baseUrl() {
		return `http://127.0.0.1:${this.port}`;
	}

	/** Starts the server; a restart reuses the port and data directory, like a real restart. */
	async start() {
		if (!this.port) this.port = await freePort();
		if (!this.dataDir)
			this.dataDir = await mkdtemp(path.join(tmpdir(), `catdog-e2e-${this.name}-`));
		await mkdir(RESULTS_DIR, { recursive: true });
		const log = createWriteStream(path.join(RESULTS_DIR, `server-${this.name}.log`), {
			flags: 'a'
		});
		const child = spawn(
			catdogBinary(),
			['serve', '--port', String(this.port), '--data-dir', this.dataDir],
			{
				env: {
					...process.env,
					INGEST_SOURCES: `folder:${this.sourcesDir}`,
					INGEST_INTERVAL_SECS: '5',
					CATDOG_WEB_DIR: WEB_DIR,
					MODEL_DIR,
					...this.extraEnv
				},
				stdio: ['ignore', 'pipe', 'pipe']
			}
		);
		child.stdout.pipe(log);
		child.stderr.pipe(log);
		this.process = child;
		const exited = new Promise((resolve) => child.once('exit', resolve));
		const deadline = Date.now() + 90_000;
		while (Date.now() < deadline) {
			if (child.exitCode !== null) {
				throw new Error(`catdog serve exited with ${child.exitCode}; see ${log.path}`);
			}
			try {
				const response = await fetch(`${this.baseUrl}/healthz`);
				if (response.ok) return;
			} catch {
				// not listening yet
			}
			await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 250))]);
		}
		throw new Error(`catdog serve did not answer /healthz within 90 s; see ${log.path}`);
	}

	async stop() {
		const child = this.process;
		if (!child || child.exitCode !== null) return;
		const exited = new Promise((resolve) => child.once('exit', resolve));
		child.kill('SIGTERM');
		const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
		await exited;
		clearTimeout(timer);
		this.process = null;
	}

	async getJson(pathAndQuery) {
		const response = await fetch(this.baseUrl + pathAndQuery);
		if (!response.ok) throw new Error(`${pathAndQuery} answered ${response.status}`);
		return response.json();
	}
}
