// node-postgres checks of the client compatibility harness: parameterised
// queries (text parameters, typed results) and a write. Connection from the
// PG* environment variables; one "ok node ..." / "not ok node ... -- why"
// line per check.
'use strict';
const { Client } = require('pg');

const writes = process.env.PRODUCTIVE_PG_WRITES === '1';

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

async function check(name, body, write = false) {
  const client = new Client();
  try {
    await client.connect();
    await body(client);
    console.log(`ok node ${name}`);
  } catch (err) {
    const why = String(err && err.message).replace(/\n/g, ' ').slice(0, 300);
    if (write && !writes) {
      console.log(`xfail node ${name} -- ${why} (this server has no write path)`);
    } else {
      console.log(`not ok node ${name} -- ${why}`);
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function main() {
  const ref = new Client();
  await ref.connect();
  const first = (await ref.query('SELECT id, title FROM tasks ORDER BY id LIMIT 1')).rows[0];
  const total = (await ref.query('SELECT count(*) AS n FROM tasks')).rows[0].n;
  await ref.end();

  await check('parameterised select', async (c) => {
    const r = await c.query('SELECT id, title, created_at FROM tasks WHERE id = $1 AND title = $2',
      [first.id, first.title]);
    expect(r.rows.length === 1, `rows ${r.rows.length}`);
    expect(r.rows[0].title === first.title, 'title');
    expect(r.rows[0].created_at instanceof Date, 'created_at is not a Date');
    expect(r.fields.map((f) => f.name).join() === 'id,title,created_at', 'column names');
    // int8 is type 20, timestamptz 1184, text 25.
    expect(r.fields.map((f) => f.dataTypeID).join() === '20,25,1184', 'type oids');
  });
  await check('parameters of several types', async (c) => {
    const r = await c.query(
      'SELECT count(*) AS n, CAST($1 AS numeric) AS amount, CAST($2 AS date) AS day ' +
      'FROM tasks WHERE created_at < $3 AND id >= $4',
      ['12.50', '2024-02-29', new Date('2100-01-01T00:00:00Z'), 1]);
    expect(r.rows[0].n === total, `count ${r.rows[0].n} vs ${total}`);
    expect(r.rows[0].amount === '12.50', `amount ${r.rows[0].amount}`);
  });
  await check('named prepared statement reused', async (c) => {
    for (let i = 0; i < 6; i++) {
      const r = await c.query({ name: 'by-id', text: 'SELECT id FROM tasks WHERE id = $1',
        values: [first.id] });
      expect(r.rows[0].id === first.id, `round ${i}`);
    }
  });
  await check('error leaves the connection usable', async (c) => {
    let code = null;
    try {
      await c.query('SELECT nosuch FROM tasks');
    } catch (err) {
      code = err.code;
    }
    expect(code === '42703', `code ${code}`);
    expect(Number((await c.query('SELECT 1 AS one')).rows[0].one) === 1, 'after error');
  });
  await check('integer literal type', async (c) => {
    // PostgreSQL types a small integer literal as integer (oid 23).
    const r = await c.query('SELECT 1 AS one');
    expect(r.fields[0].dataTypeID === 23, `type oid ${r.fields[0].dataTypeID}`);
    expect(r.rows[0].one === 1, `value ${JSON.stringify(r.rows[0].one)}`);
  });
  await check('UPDATE row count', async (c) => {
    const r = await c.query('UPDATE tasks SET title = title WHERE id = $1', [first.id]);
    expect(r.rowCount === 1, `rowCount ${r.rowCount}`);
  }, true);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
