/**
 * The ops CLI, for people and scripts: `modelgate <command> [args] [--url URL] [--json]`.
 *
 *   status [model]                      versions and states (all models: the model list)
 *   labels [model]                      active and pending labels, splits and mirrors
 *   reload                              re-read models.config on the gateway (POST /v1/config:reload)
 *   wait <model> [--version N | --label L] [--timeout S]
 *                                       wait until that version (or any, or the label's) is AVAILABLE
 *
 * Exit codes scripts can rely on: 0 = OK / available; 1 = not available, failed reload or timeout;
 * 2 = usage error; 3 = the gateway could not be reached. `--json` prints the gateway's JSON; otherwise
 * tables. `--url` points at any gateway (default http://localhost:8501, or MODELGATE_URL); `--token`
 * (or MODELGATE_TOKEN) is sent as a bearer token, for gateways with --admin_token / --api_token.
 */
import { parseArgs } from 'node:util';
import { request } from 'undici';

interface CommandHelp {
  /** Arguments after the command name. */
  args: string;
  /** One line, for `modelgate --help`. */
  summary: string;
  /** What it prints and when it exits non-zero, for `modelgate <command> --help`. */
  details: string;
  /** Options of this command only (the common ones are listed for every command). */
  options?: Array<[string, string]>;
}

const COMMANDS = {
  status: {
    args: '[model]',
    summary: 'versions and states of one model, or of every model',
    details: 'Prints MODEL, VERSION, STATE and ERROR for each version. Exits 1 if a model has no AVAILABLE version.',
  },
  labels: {
    args: '[model]',
    summary: 'version labels of one model, or of every model: active, pending, split and mirrored',
    details:
      'Prints MODEL, LABEL, VERSION, PENDING (the version a label waits for until it is AVAILABLE) and MIRROR. A split label (--traffic_config_file) shows each version with its effective share, e.g. "1:90% 2:10%" ("!": not available, its share went to the others); MIRROR shows "<version>:<percent>%".',
  },
  reload: {
    args: '',
    summary: 're-read models.config on the gateway (POST /v1/config:reload)',
    details: 'Prints "reloaded", or the error that kept the last good config in force (exit 1).',
  },
  wait: {
    args: '<model> [--version N | --label L] [--timeout S]',
    summary: 'wait until the model (a version, or a label\'s version) is AVAILABLE',
    details: 'Polls the gateway every 200 ms, also while it cannot be reached yet. Exits 0 once available, 1 on timeout.',
    options: [
      ['--version N', 'wait for version N'],
      ['--label L', "wait for the version label L points at (resolved as predict resolves it)"],
      ['--timeout S', 'give up after S seconds (default 60)'],
    ],
  },
} satisfies Record<string, CommandHelp>;

export const CLI_COMMANDS: ReadonlySet<string> = new Set(Object.keys(COMMANDS));

const COMMON_OPTIONS: Array<[string, string]> = [
  ['--url URL', 'the gateway (default http://localhost:8501, or MODELGATE_URL)'],
  ['--token T', 'bearer token for gateways with --admin_token / --api_token (or MODELGATE_TOKEN)'],
  ['--json', "print the gateway's JSON instead of a table"],
  ['--help', 'print this help'],
];

const EXIT_CODES = 'Exit codes: 0 OK / available; 1 not available, failed reload or timeout; 2 usage error; 3 gateway unreachable.';

function optionLines(options: Array<[string, string]>): string {
  const width = Math.max(...options.map(([o]) => o.length));
  return options.map(([o, h]) => `  ${o.padEnd(width)}  ${h}`).join('\n');
}

/** The commands section of `modelgate --help`: one line per command. */
export function commandsUsage(): string {
  const entries = Object.entries(COMMANDS as Record<string, CommandHelp>);
  // The positional arguments only; options are for the command's own help.
  const synopses = entries.map(([name, c]) => `${name} ${c.args.replace(/\s*\[--.*$/, '')}`.trimEnd());
  const width = Math.max(...synopses.map((s) => s.length));
  const lines = entries.map(([, c], i) => `  ${synopses[i]!.padEnd(width)}  ${c.summary}`);
  return `Commands, against a running gateway (modelgate <command> --help for each one's options):\n${lines.join('\n')}\n`;
}

/** `modelgate <command> --help`. */
export function commandUsage(command: string): string {
  const c = (COMMANDS as Record<string, CommandHelp>)[command]!;
  const own = c.options ? `\nOptions:\n${optionLines(c.options)}\n` : '';
  return (
    `usage: modelgate ${command}${c.args ? ` ${c.args}` : ''} [--url URL] [--token T] [--json]\n\n` +
    `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}. ${c.details}\n${own}\n` +
    `Common options:\n${optionLines(COMMON_OPTIONS)}\n\n${EXIT_CODES}\n`
  );
}

const EXIT = { ok: 0, notAvailable: 1, usage: 2, unreachable: 3 } as const;

interface VersionStatus {
  version: string;
  state: string;
  status: { error_code: string; error_message: string };
}

interface ModelListing {
  name: string;
  model_version_status: VersionStatus[];
  labels: Record<string, string>;
  pending_labels: Record<string, string>;
  /** --traffic_config_file: label splits with effective shares, and mirrors. */
  splits?: Record<string, { versions: Array<{ version: string; weight: number; effective_percent: number; available: boolean }>; note?: string }>;
  mirrors?: Record<string, { to_version: string; percent: number; available: boolean }>;
}

class Unreachable extends Error {}

let authorization: string | undefined;

async function call(base: string, method: 'GET' | 'POST', path: string): Promise<{ status: number; body: any }> {
  let res;
  try {
    const headers = authorization ? { authorization } : undefined;
    res = await request(`${base}${path}`, { method, headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
  } catch (err) {
    throw new Unreachable(`cannot reach ${base}: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON; keep the text
  }
  return { status: res.statusCode, body };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n') + '\n';
}

async function models(base: string, name: string | undefined): Promise<ModelListing[]> {
  if (name) {
    const status = await call(base, 'GET', `/v1/models/${encodeURIComponent(name)}`);
    const labels = await call(base, 'GET', `/v1/models/${encodeURIComponent(name)}/labels`);
    if (status.status !== 200) throw Object.assign(new Error(status.body?.error ?? `HTTP ${status.status}`), { exit: EXIT.notAvailable });
    return [
      {
        name,
        model_version_status: status.body.model_version_status,
        labels: labels.body?.labels ?? {},
        pending_labels: labels.body?.pending_labels ?? {},
        splits: labels.body?.splits ?? {},
        mirrors: labels.body?.mirrors ?? {},
      },
    ];
  }
  const list = await call(base, 'GET', '/v1/models');
  return list.body.models as ModelListing[];
}

export async function runCli(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string', default: process.env.MODELGATE_URL ?? 'http://localhost:8501' },
        json: { type: 'boolean', default: false },
        version: { type: 'string' },
        label: { type: 'string' },
        timeout: { type: 'string', default: '60' },
        token: { type: 'string', default: process.env.MODELGATE_TOKEN ?? '' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`modelgate: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command, model] = positionals;
  const base = (values.url as string).replace(/\/$/, '');
  authorization = values.token ? `Bearer ${values.token}` : undefined;
  const print = (s: string) => out.write(s);
  if (values.help && command !== undefined && CLI_COMMANDS.has(command)) {
    print(commandUsage(command));
    return EXIT.ok;
  }
  try {
    switch (command) {
      case 'status': {
        const list = await models(base, model);
        if (values.json) print(JSON.stringify(model ? { model_version_status: list[0]!.model_version_status } : { models: list }, null, 1) + '\n');
        else {
          const rows = [['MODEL', 'VERSION', 'STATE', 'ERROR']];
          for (const m of list) {
            if (m.model_version_status.length === 0) rows.push([m.name, '-', 'NO VERSIONS', '']);
            for (const v of m.model_version_status) {
              rows.push([m.name, v.version, v.state, v.status.error_code === 'OK' ? '' : `${v.status.error_code}: ${v.status.error_message}`]);
            }
          }
          print(table(rows));
        }
        const available = list.every((m) => m.model_version_status.some((v) => v.state === 'AVAILABLE'));
        return available ? EXIT.ok : EXIT.notAvailable;
      }
      case 'labels': {
        const list = await models(base, model);
        if (values.json) {
          const shown = list.map(({ name, labels, pending_labels, splits, mirrors }) => ({ name, labels, pending_labels, splits: splits ?? {}, mirrors: mirrors ?? {} }));
          print(JSON.stringify({ models: shown }, null, 1) + '\n');
        } else {
          // A split label's VERSION lists its versions with their effective shares (`2:10%`); `!` marks a
          // version that is not available (its share went to the others).
          const rows = [['MODEL', 'LABEL', 'VERSION', 'PENDING', 'MIRROR']];
          for (const m of list) {
            const splits = m.splits ?? {};
            const mirrors = m.mirrors ?? {};
            const names = new Set([...Object.keys(m.labels), ...Object.keys(m.pending_labels), ...Object.keys(splits), ...Object.keys(mirrors)]);
            for (const l of [...names].sort()) {
              const split = Object.hasOwn(splits, l) ? splits[l] : undefined;
              const version = split
                ? split.versions.map((v) => `${v.version}:${v.effective_percent}%${v.available ? '' : '!'}`).join(' ')
                : (m.labels[l] ?? '-');
              const mirror = Object.hasOwn(mirrors, l) ? mirrors[l] : undefined;
              const mirrorText = mirror ? `${mirror.to_version}:${mirror.percent}%${mirror.available ? '' : '!'}` : '';
              rows.push([m.name, l, version, m.pending_labels[l] ?? '', mirrorText]);
            }
          }
          print(table(rows));
        }
        return EXIT.ok;
      }
      case 'reload': {
        const res = await call(base, 'POST', '/v1/config:reload');
        if (values.json) print(JSON.stringify(res.body, null, 1) + '\n');
        else print(res.status === 200 ? 'reloaded\n' : `reload failed: ${res.body?.error ?? res.status}\n`);
        return res.status === 200 ? EXIT.ok : EXIT.notAvailable;
      }
      case 'wait': {
        if (!model) {
          process.stderr.write('modelgate: wait needs a model name\n');
          return EXIT.usage;
        }
        const deadline = Date.now() + Number(values.timeout) * 1000;
        for (;;) {
          const ok = await isAvailable(base, model, values.version as string | undefined, values.label as string | undefined);
          if (ok) {
            if (!values.json) print(`${model} is available\n`);
            else print(JSON.stringify({ model, available: true }) + '\n');
            return EXIT.ok;
          }
          if (Date.now() >= deadline) {
            if (!values.json) print(`timed out waiting for ${model}\n`);
            else print(JSON.stringify({ model, available: false }) + '\n');
            return EXIT.notAvailable;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      default:
        process.stderr.write(`modelgate: unknown command ${command ?? ''}; use status, labels, reload or wait\n`);
        return EXIT.usage;
    }
  } catch (err) {
    process.stderr.write(`modelgate: ${(err as Error).message}\n`);
    if (err instanceof Unreachable) return EXIT.unreachable;
    return (err as { exit?: number }).exit ?? EXIT.notAvailable;
  }
}

async function isAvailable(base: string, model: string, version?: string, label?: string): Promise<boolean> {
  const name = encodeURIComponent(model);
  if (label !== undefined) {
    // Metadata resolves labels as predict does: 200 only when the label's version is AVAILABLE.
    const res = await call(base, 'GET', `/v1/models/${name}/labels/${encodeURIComponent(label)}/metadata`).catch((e) => {
      if (e instanceof Unreachable) return { status: 0, body: undefined };
      throw e;
    });
    return res.status === 200;
  }
  const res = await call(base, 'GET', version === undefined ? `/v1/models/${name}` : `/v1/models/${name}/versions/${version}`).catch(
    (e) => {
      if (e instanceof Unreachable) return { status: 0, body: undefined };
      throw e;
    },
  );
  if (res.status !== 200) return false;
  return (res.body.model_version_status as VersionStatus[]).some((v) => v.state === 'AVAILABLE');
}
