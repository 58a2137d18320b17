// Evaluates Capstan flags with the real OpenFeature server SDK and its OFREP provider.
// It starts the real `capstan serve` (CAPSTAN_BIN, or the workspace's debug build) on
// port 0 with a fresh SQLite file, sets flags up through the management API, and checks
// what the SDK resolves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const ADMIN = 'cps_ofrep_js_admin_0123456789abcdefghijkl';
const binary = process.env.CAPSTAN_BIN ?? resolve(import.meta.dirname, '../../target/debug/capstan');
let server;
let baseUrl;
let directory;
let client;

async function api(method, path, body) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const env = '/api/v1/projects/default/environments/production/flags';

before(async () => {
  directory = mkdtempSync(join(tmpdir(), 'capstan-ofrep-'));
  server = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--database', join(directory, 'capstan.db')], {
    env: { ...process.env, CAPSTAN_BOOTSTRAP_TOKEN: ADMIN, CAPSTAN_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  baseUrl = await new Promise((resolveUrl, reject) => {
    server.once('exit', (code) => reject(new Error(`capstan serve exited with ${code}`)));
    createInterface({ input: server.stdout }).on('line', (line) => {
      if (line.startsWith('Listening on ')) resolveUrl(line.slice('Listening on '.length));
    });
  });

  await api('POST', '/api/v1/projects/default/flags', { key: 'js-bool' });
  await api('POST', '/api/v1/projects/default/flags', {
    key: 'js-string', type: 'string', variants: { red: 'red', blue: 'blue' }, defaultVariant: 'red',
  });
  await api('POST', '/api/v1/projects/default/flags', {
    key: 'js-number', type: 'number', variants: { small: 3, large: 30 }, defaultVariant: 'large',
  });
  await api('POST', '/api/v1/projects/default/flags', {
    key: 'js-object', type: 'object', variants: { a: { theme: 'dark', size: 2 }, b: {} }, defaultVariant: 'a',
  });
  await api('POST', '/api/v1/projects/default/flags', { key: 'js-targeted' });
  await api('POST', '/api/v1/projects/default/flags', {
    key: 'js-split', type: 'string', variants: { control: 'control', treatment: 'treatment' }, defaultVariant: 'control',
  });
  await api('POST', '/api/v1/projects/default/flags', { key: 'js-disabled' });
  for (const key of ['js-bool', 'js-string', 'js-number', 'js-object']) {
    await api('POST', `${env}/${key}/enable`);
  }
  await api('PATCH', `${env}/js-targeted`, {
    state: 'ENABLED',
    defaultVariant: 'off',
    targeting: { if: [{ ends_with: [{ var: 'email' }, '@example.com'] }, 'on', null] },
  });
  await api('PATCH', `${env}/js-split`, {
    state: 'ENABLED',
    targeting: { fractional: [['control', 50], ['treatment', 50]] },
  });
  const token = await api('POST', '/api/v1/tokens', { name: 'js-sdk', role: 'sdk', environment: 'production' });

  await OpenFeature.setProviderAndWait(
    new OFREPProvider({ baseUrl, headers: [['Authorization', `Bearer ${token.token}`]] }),
  );
  client = OpenFeature.getClient();
});

after(async () => {
  await OpenFeature.close();
  server?.kill('SIGTERM');
  if (server && server.exitCode === null) await new Promise((done) => server.once('exit', done));
  rmSync(directory, { recursive: true, force: true });
});

test('boolean flag', async () => {
  const details = await client.getBooleanDetails('js-bool', false, { targetingKey: 'u1' });
  assert.equal(details.value, true);
  assert.equal(details.variant, 'on');
  assert.equal(details.reason, 'STATIC');
  assert.equal(details.errorCode, undefined);
});

test('string flag', async () => {
  assert.equal(await client.getStringValue('js-string', 'none', { targetingKey: 'u1' }), 'red');
});

test('number flag', async () => {
  assert.equal(await client.getNumberValue('js-number', 0, { targetingKey: 'u1' }), 30);
});

test('object flag', async () => {
  assert.deepEqual(await client.getObjectValue('js-object', {}, { targetingKey: 'u1' }), { theme: 'dark', size: 2 });
});

test('targeting match', async () => {
  const matched = await client.getBooleanDetails('js-targeted', false, { targetingKey: 'u1', email: 'ann@example.com' });
  assert.equal(matched.value, true);
  assert.equal(matched.reason, 'TARGETING_MATCH');
  const other = await client.getBooleanDetails('js-targeted', true, { targetingKey: 'u2', email: 'bob@else.org' });
  assert.equal(other.value, false);
  assert.equal(other.reason, 'DEFAULT');
});

test('split', async () => {
  const seen = new Set();
  for (let user = 0; user < 40; user++) {
    const details = await client.getStringDetails('js-split', 'none', { targetingKey: `user-${user}` });
    assert.equal(details.reason, 'SPLIT');
    const again = await client.getStringValue('js-split', 'none', { targetingKey: `user-${user}` });
    assert.equal(again, details.value);
    seen.add(details.value);
  }
  assert.deepEqual([...seen].sort(), ['control', 'treatment']);
});

test('disabled flag', async () => {
  const details = await client.getBooleanDetails('js-disabled', true, { targetingKey: 'u1' });
  assert.equal(details.value, false);
  assert.equal(details.reason, 'DISABLED');
  assert.equal(details.errorCode, undefined);
});

test('unknown flag', async () => {
  const details = await client.getBooleanDetails('js-no-such-flag', true, { targetingKey: 'u1' });
  assert.equal(details.value, true);
  assert.equal(details.reason, 'ERROR');
  assert.equal(details.errorCode, 'FLAG_NOT_FOUND');
});
