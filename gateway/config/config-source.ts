/**
 * Keeps the manager on the current models.config and traffic file (--traffic_config_file): watches the files (chokidar; editors' write-and-rename
 * included, debounced), optionally re-reads it every N seconds (TF's
 * --model_config_file_poll_wait_seconds), and takes explicit reloads (REST admin route; TF's
 * HandleReloadConfigRequest).
 *
 * A reload reads both files (the traffic file is checked against the models it is applied with) and is
 * parse → validate → apply. A config that fails to parse or validate changes nothing: the
 * last good config stays in force, and the error (with file:line:col) is logged, kept for the status
 * endpoint, and counted. Reloads run one at a time; changes that arrive meanwhile fold into one more.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';
import type { Logger } from '../../common/logger.js';
import type { ModelManager } from '../manager/model-manager.js';
import { parseServerConfig, type ServerConfig } from './model-config.js';
import { loadTrafficFile } from './traffic-config.js';
import { configReloads } from '../metrics.js';

export interface ReloadResult {
  ok: boolean;
  /** ISO time the reload finished. */
  at: string;
  trigger: string;
  error?: string;
}

export interface ConfigSourceOptions {
  manager: ModelManager;
  /**
   * Makes a validated config take effect; defaults to applying it to the manager. With shared
   * routing state the writer publishes it to Redis first (and a failure there fails the reload).
   */
  apply?: (config: ServerConfig, wait: boolean) => Promise<void>;
  logger: Logger;
  /** The file to follow; undefined for configs built from flags. */
  file: string | undefined;
  /** --traffic_config_file, followed beside `file` (undefined: no splits or mirrors). */
  trafficFile?: string | undefined;
  initial: ServerConfig;
  watch: boolean;
  pollSeconds: number;
  debounceMs?: number;
}

export interface ConfigStatus {
  source: string;
  /** --traffic_config_file, when set. */
  traffic_source: string | null;
  /** Splits and mirrors in force. */
  traffic: { label_splits: number; mirrors: number } | null;
  generation: number;
  reloads: { ok: number; failed: number };
  last_reload: ReloadResult | null;
  last_error: ReloadResult | null;
}

export class ConfigSource {
  readonly #options: ConfigSourceOptions;
  #current: ServerConfig;
  #generation = 1;
  #ok = 0;
  #failed = 0;
  #last: ReloadResult | null = null;
  #lastError: ReloadResult | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  #queued: Promise<ReloadResult> | undefined;
  #watcher: FSWatcher | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;

  constructor(options: ConfigSourceOptions) {
    this.#options = options;
    this.#current = options.initial;
  }

  get current(): ServerConfig {
    return this.#current;
  }

  /** Starts following the file (idempotent). */
  start(): void {
    const { file, trafficFile, watch, pollSeconds } = this.#options;
    if ((!file && !trafficFile) || this.#watcher || this.#pollTimer) return;
    if (watch) {
      // Watch the folders, not the files: a rename-over replaces the file's inode. Every other entry of
      // the folders is ignored, so files that change often beside the config (logs, models) cost nothing.
      const targets = new Set([file, trafficFile].filter((f): f is string => f !== undefined).map((f) => path.resolve(f)));
      const folders = new Set([...targets].map((t) => path.dirname(t)));
      this.#watcher = chokidar.watch([...folders], {
        depth: 0,
        ignoreInitial: true,
        awaitWriteFinish: false,
        ignored: (p: string) => {
          const abs = path.resolve(p);
          return !folders.has(abs) && !targets.has(abs);
        },
      });
      const onEvent = (changed: string) => {
        if (targets.has(path.resolve(changed))) this.#debounced();
      };
      this.#watcher.on('add', onEvent).on('change', onEvent);
      this.#watcher.on('error', (err) => this.#options.logger.warn({ err }, 'config watcher error'));
    }
    if (pollSeconds > 0) {
      this.#pollTimer = setInterval(() => void this.reloadFromFile('poll'), pollSeconds * 1000);
      this.#pollTimer.unref();
    }
  }

  /** Resolves when every reload asked for so far has finished. */
  async settled(): Promise<void> {
    await this.#chain;
  }

  /** Resolves when the file watcher is ready to report changes. */
  async ready(): Promise<void> {
    const w = this.#watcher;
    if (w) await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  /** Stops following the file; explicit reloads still work. `start()` may follow again. */
  async close(): Promise<void> {
    clearInterval(this.#pollTimer);
    clearTimeout(this.#debounceTimer);
    this.#pollTimer = undefined;
    const w = this.#watcher;
    this.#watcher = undefined;
    await w?.close();
  }

  /** Records a config that took effect elsewhere (a follower applying the writer's desired state). */
  adopt(config: ServerConfig): void {
    this.#current = config;
    this.#generation++;
  }

  status(): ConfigStatus {
    const traffic = this.#current.traffic;
    return {
      source: this.#current.source,
      traffic_source: this.#options.trafficFile ? path.resolve(this.#options.trafficFile) : null,
      traffic: traffic ? { label_splits: traffic.splits.length, mirrors: traffic.mirrors.length } : null,
      generation: this.#generation,
      reloads: { ok: this.#ok, failed: this.#failed },
      last_reload: this.#last,
      last_error: this.#lastError,
    };
  }

  /** Re-reads the config files (a no-op apart from re-checking when nothing changed). */
  reloadFromFile(trigger: string, wait = false): Promise<ReloadResult> {
    const file = this.#options.file;
    if (!file && !this.#options.trafficFile) {
      return Promise.resolve(this.#record(trigger, new Error('no --model_config_file to reload from')));
    }
    // Coalesce: while a reload runs, at most one more is queued, and it reads the newest files.
    this.#queued ??= this.#enqueue(async () => {
      this.#queued = undefined;
      let config: ServerConfig;
      try {
        // Without a models file (--model_base_path), only the traffic file is re-read.
        const models = file ? parseServerConfig(await readFile(file, 'utf8'), path.resolve(file)) : { ...this.#current };
        config = await this.#withTraffic(models);
      } catch (err) {
        return this.#record(trigger, err as Error);
      }
      // An unchanged file (a periodic poll, a touch) re-validates but applies and publishes nothing.
      if (JSON.stringify(config) === JSON.stringify(this.#current) && trigger !== 'startup' && trigger !== 'became writer') {
        return { ok: true, at: new Date().toISOString(), trigger };
      }
      return this.#apply(config, trigger, wait);
    });
    return this.#queued;
  }

  /**
   * Applies config text given by a client (HandleReloadConfigRequest over REST). Relative base paths
   * resolve against the config file's folder, or the working directory. With `wait`, resolves after
   * new versions have loaded.
   */
  reloadFromText(text: string, trigger: string, wait: boolean): Promise<ReloadResult> {
    return this.#enqueue(async () => {
      const where = this.#options.file ? path.resolve(this.#options.file) : path.resolve('request.config');
      let config: ServerConfig;
      try {
        config = await this.#withTraffic(parseServerConfig(text, where));
      } catch (err) {
        return this.#record(trigger, err as Error);
      }
      return this.#apply(config, trigger, wait);
    });
  }

  /** Applies an already validated config (the gRPC HandleReloadConfigRequest path). */
  reloadFromConfig(config: ServerConfig, trigger: string, wait: boolean): Promise<ReloadResult> {
    return this.#enqueue(async () => {
      let withTraffic: ServerConfig;
      try {
        withTraffic = await this.#withTraffic(config);
      } catch (err) {
        return this.#record(trigger, err as Error);
      }
      return this.#apply(withTraffic, trigger, wait);
    });
  }

  /** `models` with the traffic file's splits and mirrors, checked against its models. */
  async #withTraffic(models: ServerConfig): Promise<ServerConfig> {
    const { traffic: _previous, ...rest } = models;
    const file = this.#options.trafficFile;
    return file ? { ...rest, traffic: await loadTrafficFile(file, rest) } : rest;
  }

  #debounced(): void {
    clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => void this.reloadFromFile('watch'), this.#options.debounceMs ?? 50);
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(task, task);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #apply(config: ServerConfig, trigger: string, wait: boolean): Promise<ReloadResult> {
    try {
      if (this.#options.apply) await this.#options.apply(config, wait);
      else await this.#options.manager.applyConfig(config, wait);
    } catch (err) {
      return this.#record(trigger, err as Error);
    }
    this.#current = config;
    this.#generation++;
    return this.#record(trigger);
  }

  #record(trigger: string, err?: Error): ReloadResult {
    const result: ReloadResult = { ok: !err, at: new Date().toISOString(), trigger };
    configReloads.inc({ result: err ? 'failed' : 'ok' });
    if (err) {
      result.error = err.message;
      this.#failed++;
      this.#lastError = result;
      this.#options.logger.error({ trigger, error: err.message }, 'Config reload failed; keeping the last good config');
    } else {
      this.#ok++;
      this.#options.logger.info({ trigger, generation: this.#generation }, 'Config reloaded');
    }
    this.#last = result;
    return result;
  }
}
