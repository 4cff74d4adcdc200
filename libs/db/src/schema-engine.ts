/**
 * Prisma's schema engine, run as WebAssembly with a pg driver adapter, so
 * migrations need neither the native engine binary nor its download.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter, type SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import * as glue from '@prisma/schema-engine-wasm/schema_engine_bg';

/** PostgreSQL type OIDs the adapter's column mapping needs rewritten. */
const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;
/** `ColumnTypeEnum.Character` of @prisma/driver-adapter-utils 7.10. */
const CHARACTER_COLUMN_TYPE = 6;
/** Appended to the name of a `"char"` column between the pg client and the adapter wrapper. */
const CHAR_COLUMN_MARK = '\u0000hwopt-char';

/**
 * A pg client that lets PostgreSQL's internal `"char"` columns, which the
 * engine's catalog queries return, through @prisma/adapter-pg 7.10.1. The
 * adapter rejects that type ("Column type 'char' could not be
 * deserialized"), and the engine reads those columns as characters, not
 * text (PostgreSQL 18's NOT NULL constraints made it panic on text). So the
 * client reports them as text with a marked name, and `typeCharColumns`
 * gives them the Character type after the adapter's mapping.
 */
class CatalogSafeClient extends pg.Client {
  // pg's query() has many overloads (promise or callback); this forwards
  // all of them and rewrites the field types of the result.
  override query(...args: any[]): any {
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last];
      args[last] = (error: Error | null, res: unknown) => callback(error, error ? res : textForCharColumns(res));
      return (super.query as (...a: any[]) => any)(...args);
    }
    const result = (super.query as (...a: any[]) => any)(...args);
    return result && typeof result.then === 'function' ? result.then(textForCharColumns) : result;
  }
}

function textForCharColumns<T>(res: T): T {
  for (const part of Array.isArray(res) ? res : [res]) {
    for (const field of (part as pg.QueryResult | undefined)?.fields ?? []) {
      if (field.dataTypeID === PG_CHAR_OID) {
        field.dataTypeID = PG_TEXT_OID;
        field.name += CHAR_COLUMN_MARK;
      }
    }
  }
  return res;
}

/**
 * Sends a migration script as one simple query. The adapter splits scripts
 * on every `;` (also inside strings and `$$` bodies) and runs the pieces one
 * by one, so a failed migration would not be atomic.
 */
function runScriptsWhole(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const pool = (adapter as unknown as { underlyingDriver(): pg.Pool }).underlyingDriver();
  adapter.executeScript = async (script: string) => {
    await pool.query(script);
  };
  return adapter;
}

/** Restores the names of marked `"char"` columns and types them as characters. */
function typeCharColumns(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const queryRaw = adapter.queryRaw.bind(adapter);
  adapter.queryRaw = async (query) => {
    const result = await queryRaw(query);
    result.columnNames.forEach((name, i) => {
      if (name.endsWith(CHAR_COLUMN_MARK)) {
        result.columnNames[i] = name.slice(0, -CHAR_COLUMN_MARK.length);
        (result.columnTypes as number[])[i] = CHARACTER_COLUMN_TYPE;
      }
    });
    return result;
  };
  return adapter;
}

/**
 * The adapter factory the engine drives. The shadow database (used to
 * replay migrations for a diff) gets a unique name and is dropped with
 * FORCE afterwards: the stock factory built from a connection string would
 * connect to the main database instead.
 */
class MigrationAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres' as const;
  readonly adapterName = '@prisma/adapter-pg';
  readonly #config: pg.PoolConfig;
  readonly #open = new Set<SqlDriverAdapter>();

  constructor(connectionString: string) {
    this.#config = { connectionString, Client: CatalogSafeClient, max: 2 };
  }

  async connect(): Promise<SqlDriverAdapter> {
    return this.#track(typeCharColumns(runScriptsWhole(await new PrismaPg(this.#config).connect())));
  }

  /**
   * Closes every pool the engine opened. Freeing the engine does not, and a
   * pool left open keeps the engine's advisory lock, which makes the next
   * migration wait for it.
   */
  async disposeAll(): Promise<void> {
    const adapters = [...this.#open];
    this.#open.clear();
    await Promise.allSettled(adapters.map((adapter) => adapter.dispose()));
  }

  #track(adapter: SqlDriverAdapter): SqlDriverAdapter {
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      this.#open.delete(adapter);
      await dispose();
    };
    this.#open.add(adapter);
    return adapter;
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const name = `hwopt_shadow_${crypto.randomUUID().replaceAll('-', '')}`;
    const admin = new pg.Client({ connectionString: this.#config.connectionString });
    await admin.connect();
    try {
      // The name is generated above from hex digits, never from input.
      await admin.query(`CREATE DATABASE "${name}"`);
    } finally {
      await admin.end();
    }
    const url = new URL(this.#config.connectionString!);
    url.pathname = `/${name}`;
    const adapter = typeCharColumns(runScriptsWhole(await new PrismaPg({ ...this.#config, connectionString: url.toString() }).connect()));
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      const cleanup = new pg.Client({ connectionString: this.#config.connectionString });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    };
    return this.#track(adapter);
  }
}

let wasmReady: Promise<void> | undefined;

/** The WebAssembly global, which this project's `lib` setting does not type. */
function wasmApi() {
  return (globalThis as unknown as { WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }> } }).WebAssembly;
}

/**
 * Instantiates the engine's WebAssembly once per process. Node 20 cannot
 * `import` a .wasm file, so the bytes are read and linked to the
 * package's JavaScript glue by hand.
 */
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const gluePath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const bytes = await readFile(gluePath.replace(/\.js$/, '.wasm'));
    const { instance } = await wasmApi().instantiate(bytes, { './schema_engine_bg.js': glue });
    glue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
  })();
  return wasmReady;
}

export type SchemaEngine = glue.SchemaEngine;

/**
 * Runs `fn` with a schema engine over `schema` (the text of schema.prisma)
 * and the database at `connectionString`, then frees the engine and closes
 * its connections.
 */
export async function withSchemaEngine<T>(connectionString: string, schemaPath: string, schema: string, fn: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  await loadWasm();
  const factory = new MigrationAdapterFactory(connectionString);
  const engine = await glue.SchemaEngine.new({ datamodels: [[schemaPath, schema]] }, () => {}, bindMigrationAwareSqlAdapterFactory(factory));
  try {
    return await fn(engine);
  } finally {
    engine.free();
    await factory.disposeAll();
  }
}
