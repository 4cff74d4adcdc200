#!/usr/bin/env node
// Container health check of the coordinator: calls grpc.health.v1.Health/Check
// and exits 0 when the server reports SERVING, 1 otherwise. Plain JavaScript
// (no tsx) so that it starts in well under a second.
//
//   node docker/healthcheck.mjs [HOST:PORT] [--service NAME] [--timeout-ms MS]
//        [--tls-ca FILE [--tls-cert FILE --tls-key FILE] [--server-name NAME]]
//
// HOST:PORT defaults to 127.0.0.1:50551, the coordinator's default port. With
// --tls-ca the call uses TLS; --server-name sets the name checked against the
// server certificate when it differs from HOST (a certificate issued for the
// compose service name, checked over 127.0.0.1). A coordinator in mutual-TLS
// mode also needs --tls-cert and --tls-key.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

const DEFAULT_TARGET = '127.0.0.1:50551';
// Docker's default HEALTHCHECK timeout is 30 s, so the check gives up well before it.
const DEFAULT_TIMEOUT_MS = 5_000;

function fail(message) {
  process.stderr.write(`healthcheck: ${message}\n`);
  process.exit(1);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      service: { type: 'string', default: '' },
      'timeout-ms': { type: 'string', default: String(DEFAULT_TIMEOUT_MS) },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'server-name': { type: 'string' },
    },
  });
} catch (error) {
  fail(`${error.message}; usage: node docker/healthcheck.mjs [HOST:PORT] [--tls-ca FILE] ...`);
}
const { values, positionals } = parsed;
if (positionals.length > 1) fail(`expected at most one HOST:PORT, got ${positionals.length} arguments`);
const target = positionals[0] ?? DEFAULT_TARGET;
if (!/^[^\s:]+:\d{1,5}$/.test(target) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(target)) fail(`target ${JSON.stringify(target)} is not HOST:PORT`);
const timeoutMs = Number(values['timeout-ms']);
if (!Number.isInteger(timeoutMs) || timeoutMs < 1) fail(`--timeout-ms ${values['timeout-ms']} must be a positive whole number of milliseconds`);

function readPem(file, flag) {
  try {
    return readFileSync(file);
  } catch (error) {
    return fail(`${flag} ${file} cannot be read (${error.code ?? error.message})`);
  }
}

let channelCredentials = credentials.createInsecure();
if (values['tls-ca']) {
  if (!!values['tls-cert'] !== !!values['tls-key']) fail('--tls-cert and --tls-key must be given together');
  channelCredentials = credentials.createSsl(
    readPem(values['tls-ca'], '--tls-ca'),
    values['tls-key'] ? readPem(values['tls-key'], '--tls-key') : null,
    values['tls-cert'] ? readPem(values['tls-cert'], '--tls-cert') : null,
  );
} else if (values['tls-cert'] || values['tls-key'] || values['server-name']) {
  fail('--tls-cert, --tls-key and --server-name need --tls-ca');
}

const channelOptions = { 'grpc.service_config_disable_resolution': 1 };
if (values['server-name']) channelOptions['grpc.ssl_target_name_override'] = values['server-name'];

const HealthClient = makeGenericClientConstructor(healthService, 'Health');
const client = new HealthClient(target, channelCredentials, channelOptions);
client.check({ service: values.service }, { deadline: Date.now() + timeoutMs }, (error, response) => {
  client.close();
  if (error) fail(`Health/Check on ${target} failed: ${error.details || error.message}`);
  if (response?.status !== 'SERVING') fail(`${target} reports ${response?.status ?? 'no status'}${values.service ? ` for ${values.service}` : ''}`);
  process.exit(0);
});
