// Statistics through the real app over a migrated libSQL file: clicks are made by real redirects at chosen times (the
// test clock), stored by the real consumer, and read back from the rollups: totals, hourly and daily series in UTC and
// in DST zones, top lists, the workspace sum, tenant isolation and scopes, every validation error next to the good
// request, the streamed raw export (NDJSON and CSV) and orphan visits.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeClicksService, invalidatingStore, type ClickStore } from '../../src/composition/clicks.ts';
import type { ClickEvent, LinkClickEvent } from '../../src/modules/clicks/clicks.schemas.ts';
import { csvCell, formatFromAccept } from '../../src/modules/stats/stats.export.ts';
import type { ExportedClick, OrphanStats, Stats } from '../../src/modules/stats/stats.schemas.ts';
import { newId } from '../../src/platform/crypto.ts';
import { ADMIN_TOKEN, createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';
import { DESKTOP, IPHONE, SLACK } from '../support/agents.ts';


let t: TestApp;
let sent: ClickEvent[];
let clicks: ClickStore;
let linkId: string;

beforeEach(async () => {
  sent = [];
  t = await createTestApp({}, { clickQueue: { send: (e) => void sent.push(e) } });
  // As the servers wire it: stored clicks drop this process's kept answers (and cached links with a maxClicks).
  clicks = invalidatingStore(composeClicksService(t.db), t.services.invalidation);
  linkId = await createLink('a');
});
afterEach(() => t.close());

async function createLink(slug: string, key?: string, domain?: string): Promise<string> {
  const res = await t.request('/v1/links', { method: 'POST', key, json: { url: `https://example.com/${slug}`, slug, domain } });
  if (res.status !== 201) throw new Error(`create link: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** A redirect at `at` (the app's clock), as a visitor would make it. */
async function visit(at: string, slug = 'a', headers: Record<string, string> = {}, method = 'GET') {
  t.clock.now = new Date(at);
  const res = await t.app.request(`/${slug}`, { method, headers: { host: 'localhost:8787', 'user-agent': IPHONE, ...headers } });
  expect([302, 404]).toContain(res.status);
}

/** Hands every event made so far to the consumer, as the queue would. */
async function consume() {
  const batch = sent.splice(0);
  const result = await clicks.ingest(batch);
  expect(result.rejected).toEqual([]);
}

/** The retention purge, run as if 91 days had passed (it goes by event ids, which carry the real time). */
const purgeAll = () => clicks.purge(new Date(Date.now() + 91 * 86_400_000), 90);

async function getStats(path: string, key?: string): Promise<Stats> {
  const res = await t.request(path, { key });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as Stats;
}

const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
const counts = (s: Stats) => s.series.map((p) => [p.start, p.humans, p.bots]);

describe('GET /v1/links/{id}/stats', () => {
  it('keeps an answer for 5 s for clicks stored elsewhere, and drops it when this process stores clicks', async () => {
    await visit('2026-03-10T10:15:00Z', 'a');
    await consume();
    t.clock.now = new Date('2026-03-10T14:00:00Z');
    const path = `/v1/links/${linkId}/stats?${q({ from: '2026-03-10T09:00:00Z', to: '2026-03-10T13:00:00Z' })}`;
    expect((await getStats(path)).totals.humans).toBe(1);
    // Another process's consumer (a plain clicks service, not this process's): this process cannot know.
    await visit('2026-03-10T10:20:00Z', 'a');
    await composeClicksService(t.db).ingest(sent.splice(0));
    t.clock.now = new Date('2026-03-10T14:00:04.900Z');
    expect((await getStats(path)).totals.humans).toBe(1);
    t.clock.now = new Date('2026-03-10T14:00:05Z');
    expect((await getStats(path)).totals.humans).toBe(2);
    // This process's consumer: the next answer counts the new click at once.
    await visit('2026-03-10T10:25:00Z', 'a');
    await consume();
    t.clock.now = new Date('2026-03-10T14:00:06Z');
    expect((await getStats(path)).totals.humans).toBe(3);
  });

  it('counts humans and bots apart, in a zero-filled hourly series, with top values per dimension', async () => {
    await visit('2026-03-10T10:15:00Z', 'a', { 'cf-ipcountry': 'DE', referer: 'https://news.example.org/p' });
    await visit('2026-03-10T10:45:00Z', 'a', { 'cf-ipcountry': 'FR', 'user-agent': DESKTOP });
    await visit('2026-03-10T10:50:00Z', 'a', { 'cf-ipcountry': 'DE', referer: 'https://news.example.org/q' });
    await visit('2026-03-10T12:05:00Z', 'a', { 'user-agent': SLACK });
    await visit('2026-03-10T12:10:00Z', 'a', {}, 'HEAD');
    await consume();
    const s = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-03-10T09:00:00Z', to: '2026-03-10T13:00:00Z', interval: 'hour' })}`);
    expect(s).toMatchObject({ from: '2026-03-10T09:00:00+00:00', to: '2026-03-10T13:00:00+00:00', interval: 'hour', tz: 'UTC' });
    expect(s.totals).toEqual({ humans: 3, bots: 2 });
    expect(counts(s)).toEqual([
      ['2026-03-10T09:00:00+00:00', 0, 0],
      ['2026-03-10T10:00:00+00:00', 3, 0],
      ['2026-03-10T11:00:00+00:00', 0, 0],
      ['2026-03-10T12:00:00+00:00', 0, 2],
    ]);
    // Ordered by humans + bots: the two bots without a country come before FR, after DE (a tie: unknown last).
    expect(s.top.country).toEqual([
      { value: 'DE', humans: 2, bots: 0 },
      { value: null, humans: 0, bots: 2 },
      { value: 'FR', humans: 1, bots: 0 },
    ]);
    expect(s.top.referrer).toEqual([
      { value: null, humans: 1, bots: 2 },
      { value: 'news.example.org', humans: 2, bots: 0 },
    ]);
    expect(s.top.device).toEqual([
      { value: 'bot', humans: 0, bots: 2 },
      { value: 'mobile', humans: 2, bots: 0 },
      { value: 'desktop', humans: 1, bots: 0 },
    ]);
    expect(Object.keys(s.top).sort()).toEqual(['browser', 'country', 'device', 'os', 'referrer']);
    for (const list of Object.values(s.top)) {
      expect(list!.reduce((n, e) => n + e.humans + e.bots, 0)).toBe(5);
    }
  });

  it('rounds from down and to up to whole buckets, and counts only what lies in them', async () => {
    await visit('2026-03-10T08:59:59Z');
    await visit('2026-03-10T09:00:00Z');
    await visit('2026-03-10T10:59:59Z');
    await visit('2026-03-10T11:00:00Z');
    await consume();
    const s = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-03-10T09:30:00Z', to: '2026-03-10T10:00:01Z' })}`);
    expect(s.from).toBe('2026-03-10T09:00:00+00:00');
    expect(s.to).toBe('2026-03-10T11:00:00+00:00');
    expect(counts(s)).toEqual([
      ['2026-03-10T09:00:00+00:00', 1, 0],
      ['2026-03-10T10:00:00+00:00', 1, 0],
    ]);
    expect(s.totals).toEqual({ humans: 2, bots: 0 });
  });

  it('defaults to the last 7 days up to now, hourly, and to daily buckets for longer ranges', async () => {
    await visit('2026-03-10T10:15:00Z');
    await consume();
    t.clock.now = new Date('2026-03-12T10:30:00Z');
    const s = await getStats(`/v1/links/${linkId}/stats`);
    expect(s).toMatchObject({ from: '2026-03-05T10:00:00+00:00', to: '2026-03-12T11:00:00+00:00', interval: 'hour', tz: 'UTC' });
    expect(s.series).toHaveLength(7 * 24 + 1);
    expect(s.totals).toEqual({ humans: 1, bots: 0 });
    const long = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-03-01T00:00:00Z' })}`);
    expect(long).toMatchObject({ interval: 'day', from: '2026-03-01T00:00:00+00:00', to: '2026-03-13T00:00:00+00:00' });
    expect(long.series).toHaveLength(12);
    expect(long.series[9]).toEqual({ start: '2026-03-10T00:00:00+00:00', humans: 1, bots: 0 });
    const before = await getStats(`/v1/links/${linkId}/stats?${q({ to: '2026-03-10T00:00:00Z' })}`);
    expect(before).toMatchObject({ from: '2026-03-03T00:00:00+00:00', interval: 'hour', totals: { humans: 0, bots: 0 } });
  });

  it('cuts days at local midnight in Europe/Paris across the switch to summer time (a 23-hour day)', async () => {
    await visit('2026-03-28T22:59:00Z'); // 23:59 on the 28th in Paris (UTC+1)
    await visit('2026-03-28T23:30:00Z'); // 00:30 on the 29th
    await visit('2026-03-29T21:59:00Z'); // 23:59 on the 29th (UTC+2 since 01:00 UTC)
    await visit('2026-03-29T22:30:00Z'); // 00:30 on the 30th
    await consume();
    const range = { from: '2026-03-28T00:00:00+01:00', to: '2026-03-31T00:00:00+02:00', interval: 'day' };
    const paris = await getStats(`/v1/links/${linkId}/stats?${q({ ...range, tz: 'Europe/Paris' })}`);
    expect(paris).toMatchObject({ from: '2026-03-28T00:00:00+01:00', to: '2026-03-31T00:00:00+02:00', tz: 'Europe/Paris' });
    expect(counts(paris)).toEqual([
      ['2026-03-28T00:00:00+01:00', 1, 0],
      ['2026-03-29T00:00:00+01:00', 2, 0],
      ['2026-03-30T00:00:00+02:00', 1, 0],
    ]);
    // The same clicks by UTC days.
    const utc = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-03-28T00:00:00Z', to: '2026-03-31T00:00:00Z', interval: 'day' })}`);
    expect(counts(utc)).toEqual([
      ['2026-03-28T00:00:00+00:00', 2, 0],
      ['2026-03-29T00:00:00+00:00', 2, 0],
      ['2026-03-30T00:00:00+00:00', 0, 0],
    ]);
    // The 29th has 23 hours: its hourly series skips 02:00.
    const hours = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-03-29T00:00:00+01:00', to: '2026-03-30T00:00:00+02:00', interval: 'hour', tz: 'Europe/Paris' })}`);
    expect(hours.series).toHaveLength(23);
    expect(hours.series.slice(1, 3).map((p) => p.start)).toEqual(['2026-03-29T01:00:00+01:00', '2026-03-29T03:00:00+02:00']);
    expect(hours.totals).toEqual({ humans: 2, bots: 0 });
  });

  it('repeats the hour from 02:00 when Europe/Paris falls back (a 25-hour day)', async () => {
    await visit('2026-10-25T00:30:00Z'); // 02:30 summer time
    await visit('2026-10-25T01:30:00Z'); // 02:30 winter time
    await visit('2026-10-25T01:40:00Z');
    await consume();
    const hours = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-10-25T00:00:00+02:00', to: '2026-10-25T04:00:00+01:00', interval: 'hour', tz: 'Europe/Paris' })}`);
    expect(counts(hours)).toEqual([
      ['2026-10-25T00:00:00+02:00', 0, 0],
      ['2026-10-25T01:00:00+02:00', 0, 0],
      ['2026-10-25T02:00:00+02:00', 1, 0],
      ['2026-10-25T02:00:00+01:00', 2, 0],
      ['2026-10-25T03:00:00+01:00', 0, 0],
    ]);
    const days = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-10-24T12:00:00+02:00', to: '2026-10-26T12:00:00+01:00', interval: 'day', tz: 'Europe/Paris' })}`);
    expect(counts(days)).toEqual([
      ['2026-10-24T00:00:00+02:00', 0, 0],
      ['2026-10-25T00:00:00+02:00', 3, 0],
      ['2026-10-26T00:00:00+01:00', 0, 0],
    ]);
  });

  it('cuts days in America/New_York across its switch to daylight time', async () => {
    await visit('2026-03-08T04:30:00Z'); // 23:30 on the 7th (UTC-5)
    await visit('2026-03-08T05:30:00Z'); // 00:30 on the 8th
    await visit('2026-03-09T03:30:00Z'); // 23:30 on the 8th (UTC-4)
    await visit('2026-03-09T04:30:00Z'); // 00:30 on the 9th
    await consume();
    const s = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-03-07T00:00:00-05:00', to: '2026-03-10T00:00:00-04:00', interval: 'day', tz: 'America/New_York' })}`);
    expect(counts(s)).toEqual([
      ['2026-03-07T00:00:00-05:00', 1, 0],
      ['2026-03-08T00:00:00-05:00', 2, 0],
      ['2026-03-09T00:00:00-04:00', 1, 0],
    ]);
  });

  it('limits top lists to top=N (ties by value), answers only the dimensions asked for, and none with top=0', async () => {
    const referrers = { 'r1.example': 5, 'r2.example': 3, 'r3.example': 3, 'r4.example': 1 };
    for (const [host, n] of Object.entries(referrers)) {
      for (let i = 0; i < n; i++) await visit('2026-03-10T10:00:00Z', 'a', { referer: `https://${host}/` });
    }
    await consume();
    const base = { from: '2026-03-10T00:00:00Z', to: '2026-03-11T00:00:00Z' };
    const two = await getStats(`/v1/links/${linkId}/stats?${q({ ...base, top: '2', dimensions: 'referrer,country' })}`);
    expect(Object.keys(two.top).sort()).toEqual(['country', 'referrer']);
    expect(two.top.referrer).toEqual([
      { value: 'r1.example', humans: 5, bots: 0 },
      { value: 'r2.example', humans: 3, bots: 0 },
    ]);
    const all = await getStats(`/v1/links/${linkId}/stats?${q({ ...base, top: '100', dimensions: 'referrer' })}`);
    expect(all.top.referrer!.map((e) => e.value)).toEqual(['r1.example', 'r2.example', 'r3.example', 'r4.example']);
    const none = await getStats(`/v1/links/${linkId}/stats?${q({ ...base, top: '0' })}`);
    expect(none.top).toEqual({ country: [], device: [], browser: [], os: [], referrer: [] });
    expect(none.totals).toEqual({ humans: 12, bots: 0 });
  });

  it('sums top lists over many days from daily rollups and ragged edges of slots', async () => {
    // 60 clicks over 6 days, every 2h24m, on 4 referrers in turn, every fifth from a bot; the range cuts into the
    // first and last day.
    const start = Date.parse('2026-03-01T00:00:00Z');
    const made: Array<{ at: number; host: string; bot: boolean }> = [];
    for (let i = 0; i < 60; i++) {
      const at = start + i * 8_640_000;
      const host = `r${(i * 7) % 4}.example`;
      const bot = i % 5 === 0;
      made.push({ at, host, bot });
      await visit(new Date(at).toISOString(), 'a', {
        referer: `https://${host}/`,
        'cf-ipcountry': i % 3 ? 'DE' : 'FR',
        ...(bot ? { 'user-agent': SLACK } : {}),
      });
    }
    await consume();
    t.clock.now = new Date('2026-03-10T00:00:00Z');
    const from = Date.parse('2026-03-01T05:00:00Z');
    const to = Date.parse('2026-03-05T17:00:00Z');
    const expected = new Map<string, { value: string; humans: number; bots: number }>();
    for (const m of made) {
      if (m.at < from || m.at >= to) continue;
      const e = expected.get(m.host) ?? { value: m.host, humans: 0, bots: 0 };
      if (m.bot) e.bots++;
      else e.humans++;
      expected.set(m.host, e);
    }
    const want = [...expected.values()].sort((a, b) => b.humans + b.bots - (a.humans + a.bots) || (a.value < b.value ? -1 : 1));
    expect(want.every((w) => w.bots > 0 && w.humans > w.bots)).toBe(true);
    const path = `/v1/links/${linkId}/stats?${q({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), interval: 'hour', top: '100' })}`;
    const first = await getStats(path);
    expect(first.top.referrer).toEqual(want);
    expect(first.totals).toEqual({ humans: want.reduce((n, w) => n + w.humans, 0), bots: want.reduce((n, w) => n + w.bots, 0) });
    expect(await getStats(path)).toEqual(first);

    // A click for a closed day that arrives late counts at once, in the totals and the top lists alike.
    await visit('2026-03-03T12:00:00Z', 'a', { referer: 'https://late.example/' });
    await consume();
    t.clock.now = new Date('2026-03-10T00:00:00Z');
    const late = await getStats(path);
    expect(late.totals.humans).toBe(first.totals.humans + 1);
    expect(late.top.referrer).toContainEqual({ value: 'late.example', humans: 1, bots: 0 });

    // In a zone, the same days: Paris midnights are 23:00 UTC, so every edge is a ragged one.
    const paris = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-03-01T00:00:00+01:00', to: '2026-03-06T00:00:00+01:00', interval: 'day', tz: 'Europe/Paris', top: '100' })}`);
    const parisFrom = Date.parse('2026-02-28T23:00:00Z');
    const parisTo = Date.parse('2026-03-05T23:00:00Z');
    const inParis = made.filter((m) => m.at >= parisFrom && m.at < parisTo);
    const parisHumans = inParis.filter((m) => !m.bot).length + 1;
    expect(paris.totals).toEqual({ humans: parisHumans, bots: inParis.length + 1 - parisHumans });
    expect(paris.top.country!.reduce((n, e) => n + e.humans, 0)).toBe(parisHumans);
    expect(paris.top.referrer!.find((e) => e.value === 'r1.example')).toMatchObject({
      humans: inParis.filter((m) => m.host === 'r1.example' && !m.bot).length,
      bots: inParis.filter((m) => m.host === 'r1.example' && m.bot).length,
    });
  });

  it('keeps counting clicks whose raw rows were purged past retention', async () => {
    await visit('2026-01-10T10:00:00Z');
    await consume();
    await purgeAll();
    expect(await t.count('clicks')).toBe(0);
    const s = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' })}`);
    expect(s.totals).toEqual({ humans: 1, bots: 0 });
  });
});

describe('local days and hours in every zone', () => {
  // Zones whose offset is not whole hours, in January and in July (southern summer and northern summer).
  const cases: Array<[string, string, string]> = [
    ['Asia/Kolkata', '2026-01-15', '+05:30'],
    ['Asia/Kathmandu', '2026-01-15', '+05:45'],
    ['America/St_Johns', '2026-01-15', '-03:30'],
    ['America/St_Johns', '2026-07-15', '-02:30'],
    ['Australia/Lord_Howe', '2026-01-15', '+11:00'],
    ['Australia/Lord_Howe', '2026-07-15', '+10:30'],
    ['Pacific/Chatham', '2026-01-15', '+13:45'],
    ['Pacific/Chatham', '2026-07-15', '+12:45'],
  ];
  const nextDay = (date: string, n = 1) => new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

  it.each(cases)('puts a click at 23:50 and one at 00:10 in %s (%s, %s) in their own local days and hours', async (tz, day, offset) => {
    const slug = `z${cases.findIndex((c) => c[0] === tz && c[1] === day)}`;
    const id = await createLink(slug);
    const d1 = nextDay(day);
    const d2 = nextDay(day, 2);
    await visit(new Date(`${day}T23:50:00${offset}`).toISOString(), slug);
    await visit(new Date(`${d1}T00:10:00${offset}`).toISOString(), slug);
    await visit(new Date(`${d1}T23:50:00${offset}`).toISOString(), slug);
    await consume();
    const days = await getStats(`/v1/links/${id}/stats?${q({ from: `${day}T00:00:00${offset}`, to: `${nextDay(day, 3)}T00:00:00${offset}`, interval: 'day', tz })}`);
    expect(counts(days)).toEqual([
      [`${day}T00:00:00${offset}`, 1, 0],
      [`${d1}T00:00:00${offset}`, 2, 0],
      [`${d2}T00:00:00${offset}`, 0, 0],
    ]);
    // Hours follow the local clock, :30 and :45 included.
    const hours = await getStats(`/v1/links/${id}/stats?${q({ from: `${day}T22:00:00${offset}`, to: `${d1}T02:00:00${offset}`, interval: 'hour', tz })}`);
    expect(counts(hours)).toEqual([
      [`${day}T22:00:00${offset}`, 0, 0],
      [`${day}T23:00:00${offset}`, 1, 0],
      [`${d1}T00:00:00${offset}`, 1, 0],
      [`${d1}T01:00:00${offset}`, 0, 0],
    ]);
    // The same, read by the workspace, and over a range long enough to be summed from daily rollups.
    const ws = await getStats(`/v1/stats?${q({ from: `${nextDay(day, -20)}T00:00:00${offset}`, to: `${nextDay(day, 20)}T00:00:00${offset}`, interval: 'day', tz })}`);
    expect(ws.series).toHaveLength(40);
    expect(ws.series.filter((p) => p.humans).map((p) => [p.start, p.humans])).toEqual([
      [`${day}T00:00:00${offset}`, 1],
      [`${d1}T00:00:00${offset}`, 2],
    ]);
  });

  it.each<[string, string, string, string, number]>([
    ['Europe/Paris', '2026-03-29T00:00:00+01:00', '2026-03-30T00:00:00+02:00', '2026-03-29T01:30:00Z', 23],
    ['Europe/Paris', '2026-10-25T00:00:00+02:00', '2026-10-26T00:00:00+01:00', '2026-10-25T01:30:00Z', 25],
    ['America/New_York', '2026-03-08T00:00:00-05:00', '2026-03-09T00:00:00-04:00', '2026-03-08T07:30:00Z', 23],
    ['America/New_York', '2026-11-01T00:00:00-04:00', '2026-11-02T00:00:00-05:00', '2026-11-01T06:30:00Z', 25],
  ])('gives the local day in %s from %s its %i hourly points', async (tz, from, to, click, points) => {
    await visit(new Date(Date.parse(from) - 60_000).toISOString()); // the evening before
    await visit(click); // just after the change
    await visit(new Date(Date.parse(to) - 60_000).toISOString()); // 23:59
    await visit(to); // the next day
    await consume();
    const hours = await getStats(`/v1/links/${linkId}/stats?${q({ from, to, interval: 'hour', tz })}`);
    expect(hours.series).toHaveLength(points);
    expect(hours.from).toBe(from);
    expect(hours.to).toBe(to);
    expect(hours.totals).toEqual({ humans: 2, bots: 0 });
    const day = await getStats(`/v1/links/${linkId}/stats?${q({ from, to, interval: 'day', tz })}`);
    expect(counts(day)).toEqual([[from, 2, 0]]);
  });

  it("follows Lord Howe's 30-minute DST: a day of 24.5 hours and one of 23.5", async () => {
    const fall = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-04-05T00:00:00+11:00', to: '2026-04-06T00:00:00+10:30', interval: 'hour', tz: 'Australia/Lord_Howe' })}`);
    expect(fall.series.slice(0, 4).map((p) => p.start)).toEqual([
      '2026-04-05T00:00:00+11:00',
      '2026-04-05T01:00:00+11:00',
      '2026-04-05T01:30:00+10:30',
      '2026-04-05T02:00:00+10:30',
    ]);
    expect(fall.series).toHaveLength(25);
    const spring = await getStats(`/v1/links/${linkId}/stats?${q({ from: '2026-10-04T00:00:00+10:30', to: '2026-10-05T00:00:00+11:00', interval: 'hour', tz: 'Australia/Lord_Howe' })}`);
    expect(spring.series.slice(1, 4).map((p) => p.start)).toEqual([
      '2026-10-04T01:00:00+10:30',
      '2026-10-04T02:30:00+11:00',
      '2026-10-04T03:00:00+11:00',
    ]);
    expect(spring.series).toHaveLength(24);
  });

  it('counts the same clicks in every zone, each in the local day Intl gives it, top lists included', async () => {
    // 120 clicks, one every 97 minutes from March 24 (across Europe's and New York's switch to summer time).
    const made: Array<{ at: number; host: string }> = [];
    for (let i = 0; i < 120; i++) {
      const at = Date.parse('2026-03-24T00:07:00Z') + i * 97 * 60_000;
      const host = `r${i % 3}.example`;
      made.push({ at, host });
      await visit(new Date(at).toISOString(), 'a', { referer: `https://${host}/` });
    }
    await consume();
    const zones = ['UTC', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/St_Johns', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Europe/Paris', 'America/New_York', 'Pacific/Kiritimati', 'Pacific/Pago_Pago'];
    for (const tz of zones) {
      const localDay = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
      const range = { from: '2026-03-20T00:00:00Z', to: '2026-04-05T00:00:00Z', tz, top: '100', dimensions: 'referrer' };
      for (const interval of ['day', 'hour']) {
        const s = await getStats(`/v1/links/${linkId}/stats?${q({ ...range, interval })}`);
        expect(s.totals, `${tz} ${interval}`).toEqual({ humans: 120, bots: 0 });
        expect(s.series.reduce((n, p) => n + p.humans, 0)).toBe(120);
        expect(s.top.referrer!.reduce((n, e) => n + e.humans, 0)).toBe(120);
      }
      // Each local day holds the clicks Intl puts on that date; and a range of whole local days in the middle
      // (its ends are edges of slots, not UTC midnights) has exactly their top lists.
      const s = await getStats(`/v1/links/${linkId}/stats?${q({ ...range, interval: 'day' })}`);
      const perDay = new Map<string, number>();
      for (const m of made) perDay.set(localDay.format(m.at), (perDay.get(localDay.format(m.at)) ?? 0) + 1);
      expect(new Map(s.series.filter((p) => p.humans).map((p) => [p.start.slice(0, 10), p.humans])), tz).toEqual(perDay);
      const middle = s.series.slice(6, 11);
      const from = middle[0]!.start;
      const to = s.series[11]!.start;
      const inside = made.filter((m) => m.at >= Date.parse(from) && m.at < Date.parse(to));
      const part = await getStats(`/v1/links/${linkId}/stats?${q({ from, to, tz, interval: 'day', top: '100', dimensions: 'referrer' })}`);
      expect(part.totals.humans).toBe(inside.length);
      const want = new Map<string, number>();
      for (const m of inside) want.set(m.host, (want.get(m.host) ?? 0) + 1);
      expect(new Map(part.top.referrer!.map((e) => [e.value, e.humans])), tz).toEqual(want);
    }
  });
});

describe('GET /v1/stats', () => {
  it("sums the workspace's links, and nothing of another workspace", async () => {
    const b = await createLink('b');
    const other = await t.createWorkspace('other');
    const foreign = await createLink('c', other.adminKey);
    await visit('2026-03-10T10:00:00Z', 'a', { 'cf-ipcountry': 'DE' });
    await visit('2026-03-10T11:00:00Z', 'a', { 'cf-ipcountry': 'FR' });
    await visit('2026-03-10T11:30:00Z', 'b', { 'cf-ipcountry': 'DE' });
    await visit('2026-03-10T12:00:00Z', 'b', { 'user-agent': SLACK });
    await visit('2026-03-10T12:00:00Z', 'c', { 'cf-ipcountry': 'US' });
    await consume();
    const range = q({ from: '2026-03-10T09:00:00Z', to: '2026-03-10T13:00:00Z', interval: 'hour' });
    const [ws, sa, sb] = await Promise.all([
      getStats(`/v1/stats?${range}`),
      getStats(`/v1/links/${linkId}/stats?${range}`),
      getStats(`/v1/links/${b}/stats?${range}`),
    ]);
    expect(ws.totals).toEqual({ humans: sa.totals.humans + sb.totals.humans, bots: sa.totals.bots + sb.totals.bots });
    expect(ws.totals).toEqual({ humans: 3, bots: 1 });
    expect(ws.series).toEqual(sa.series.map((p, i) => ({ start: p.start, humans: p.humans + sb.series[i]!.humans, bots: p.bots + sb.series[i]!.bots })));
    expect(ws.top.country).toEqual([
      { value: 'DE', humans: 2, bots: 0 },
      { value: 'FR', humans: 1, bots: 0 },
      { value: null, humans: 0, bots: 1 },
    ]);
    const theirs = await getStats(`/v1/stats?${range}`, other.adminKey);
    expect(theirs.totals).toEqual({ humans: 1, bots: 0 });
    expect(theirs.top.country).toEqual([{ value: 'US', humans: 1, bots: 0 }]);
    expect((await getStats(`/v1/links/${foreign}/stats?${range}`, other.adminKey)).totals).toEqual({ humans: 1, bots: 0 });
  });

  it('answers an empty workspace with zeros', async () => {
    t.clock.now = new Date('2026-03-10T10:30:00Z');
    const s = await getStats(`/v1/stats?${q({ from: '2026-03-09T00:00:00Z', interval: 'day', tz: 'America/New_York' })}`);
    expect(s).toMatchObject({ from: '2026-03-08T00:00:00-05:00', to: '2026-03-11T00:00:00-04:00', totals: { humans: 0, bots: 0 } });
    expect(s.series.map((p) => p.humans + p.bots)).toEqual([0, 0, 0]);
  });
});

describe('access', () => {
  const paths = () => [
    `/v1/links/${linkId}/stats`,
    '/v1/stats',
    `/v1/links/${linkId}/clicks`,
    '/v1/orphans?domain=go.example.com',
  ];

  it('needs the analytics:read scope (or workspace:admin)', async () => {
    await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } });
    const reader = await t.createKey(['links:read', 'links:write']);
    const analyst = await t.createKey(['analytics:read']);
    for (const path of paths()) {
      const refused = await t.request(path, { key: reader.key });
      await expectProblem(refused, 403, 'forbidden');
      expect(refused.headers.get('www-authenticate')).toContain('scope="analytics:read"');
      expect((await t.request(path, { key: analyst.key })).status).toBe(200);
      await expectProblem(await t.request(path, { key: null }), 401, 'unauthorized');
    }
  });

  it("answers another workspace's link exactly like a missing one", async () => {
    const other = await t.createWorkspace('other');
    for (const suffix of ['stats', 'clicks']) {
      const foreign = await expectProblem(await t.request(`/v1/links/${linkId}/${suffix}`, { key: other.adminKey }), 404, 'not-found');
      const missing = await expectProblem(await t.request(`/v1/links/lnk_${'0'.repeat(32)}/${suffix}`, { key: other.adminKey }), 404, 'not-found');
      expect({ ...foreign, instance: '' }).toEqual({ ...missing, instance: '' });
    }
  });
});

describe('validation', () => {
  const good = { from: '2026-03-01T00:00:00Z', to: '2026-03-08T00:00:00Z' };

  it.each<[string, Record<string, string>, string]>([
    ['from without an offset', { ...good, from: '2026-03-01T00:00:00' }, 'from'],
    ['from that is not a date', { ...good, from: 'yesterday' }, 'from'],
    ['to as a bare date', { ...good, to: '2026-03-08' }, 'to'],
    ['from before 1970', { ...good, from: '1969-12-31T23:00:00Z' }, 'from'],
    ['to equal to from', { ...good, to: good.from }, 'to'],
    ['to before from', { from: good.to, to: good.from }, 'to'],
    ['from in the future without to', { from: '2026-04-01T00:00:00Z' }, 'from'],
    ['an hourly range over 31 days', { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:01Z', interval: 'hour' }, 'from'],
    ['a daily range over 731 days', { from: '2024-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', interval: 'day' }, 'from'],
    ['an unknown interval', { ...good, interval: 'week' }, 'interval'],
    ['an unknown time zone', { ...good, tz: 'Mars/Olympus_Mons' }, 'tz'],
    ['a fixed offset as time zone', { ...good, tz: '+02:00' }, 'tz'],
    ['an overlong time zone', { ...good, tz: `Europe/${'x'.repeat(80)}` }, 'tz'],
    ['top over 100', { ...good, top: '101' }, 'top'],
    ['a negative top', { ...good, top: '-1' }, 'top'],
    ['a top that is not a number', { ...good, top: '1e1' }, 'top'],
    ['an unknown dimension', { ...good, dimensions: 'country,planet' }, 'dimensions'],
    ['an empty dimensions list', { ...good, dimensions: '' }, 'dimensions'],
    ['an unknown parameter', { ...good, limit: '5' }, 'limit'],
  ])('refuses %s with 400 naming the field, where the fixed request succeeds', async (_, params, field) => {
    t.clock.now = new Date('2026-03-10T00:00:00Z');
    for (const path of [`/v1/links/${linkId}/stats`, '/v1/stats']) {
      const problem = await expectProblem(await t.request(`${path}?${q(params)}`), 400, 'validation');
      expect(problem.errors?.map((e) => [e.in, e.field])).toContainEqual(['query', field]);
      expect((await t.request(`${path}?${q(good)}`)).status).toBe(200);
    }
  });

  it.each([
    ['tz=UTC&tz=UTC', 'tz'],
    ['top=', 'top'],
    ['from=', 'from'],
    ['interval=', 'interval'],
    ['tz=%00', 'tz'],
    ['tz=..%2F..%2Fetc', 'tz'],
    ['dimensions=country,,os', 'dimensions'],
    ['from=2026-03-01T00:00:00Z&from=2026-03-02T00:00:00Z', 'from'],
  ])('refuses the raw query %s with 400 naming %s, never a 500', async (query, field) => {
    const problem = await expectProblem(await t.request(`/v1/stats?${query}`), 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
  });

  it('accepts the longest ranges: 31 days hourly, 731 days daily', async () => {
    const hourly = await getStats(`/v1/stats?${q({ from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z', interval: 'hour' })}`);
    expect(hourly.series).toHaveLength(744);
    const daily = await getStats(`/v1/stats?${q({ from: '2024-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z', interval: 'day', tz: 'Europe/Paris' })}`);
    expect(daily.series).toHaveLength(732);
  });

  it('refuses a bad query to a link of another workspace with the same 400 (the query is checked first)', async () => {
    const other = await t.createWorkspace('other');
    const bad = await expectProblem(await t.request(`/v1/links/${linkId}/stats?tz=Nowhere`, { key: other.adminKey }), 400);
    expect(bad.errors?.[0]?.field).toBe('tz');
  });

  it.each<[string, Record<string, string>, string]>([
    ['an unknown format', { format: 'xml' }, 'format'],
    ['to not after from', { from: '2026-03-02T00:00:00Z', to: '2026-03-01T00:00:00Z' }, 'to'],
    ['a bad from', { from: 'now' }, 'from'],
    ['an unknown parameter', { tz: 'UTC' }, 'tz'],
  ])('refuses an export with %s', async (_, params, field) => {
    const problem = await expectProblem(await t.request(`/v1/links/${linkId}/clicks?${q(params)}`), 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
  });
});

describe('GET /v1/links/{id}/clicks', () => {
  /** A real click event made by a redirect, changed the way a tampered queue message could be. */
  async function craftedClick(at: string, fields: Partial<LinkClickEvent>): Promise<void> {
    await visit(at);
    const event = sent.pop() as LinkClickEvent;
    sent.push({ ...event, ...fields });
  }

  it('streams NDJSON by default, oldest first, with every field', async () => {
    await visit('2026-03-10T10:00:00Z', 'a', { 'cf-ipcountry': 'DE', referer: 'https://news.example.org/' });
    await visit('2026-03-10T11:00:00Z', 'a', { 'user-agent': SLACK });
    await consume();
    const res = await t.request(`/v1/links/${linkId}/clicks`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="clicks-${linkId}.ndjson"`);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const text = await res.text();
    expect(text.endsWith('\n')).toBe(true);
    const rows = text.trim().split('\n').map((l) => JSON.parse(l) as ExportedClick);
    expect(rows).toEqual([
      { id: expect.stringMatching(/^clk_/), at: '2026-03-10T10:00:00.000Z', country: 'DE', device: 'mobile', browser: 'Safari', os: 'iOS', referrer: 'news.example.org', bot: false },
      { id: expect.stringMatching(/^clk_/), at: '2026-03-10T11:00:00.000Z', country: null, device: 'bot', browser: expect.any(String), os: expect.any(String), referrer: null, bot: true },
    ]);
  });

  it('writes CSV (format=csv or Accept: text/csv) with a header, RFC 4180 quoting and no formulas', async () => {
    await craftedClick('2026-03-10T10:00:00Z', { referrer: 'a,"b"\r\nc' });
    await craftedClick('2026-03-10T10:01:00Z', { referrer: '=HYPERLINK("http://evil.example")' });
    await visit('2026-03-10T10:02:00Z', 'a', { referer: 'https://-dash.example/' });
    await consume();
    const requests: Array<{ path: string; headers: Record<string, string> }> = [
      { path: '?format=csv', headers: { accept: 'application/x-ndjson' } },
      { path: '', headers: { accept: 'text/csv' } },
    ];
    for (const init of requests) {
      const res = await t.request(`/v1/links/${linkId}/clicks${init.path}`, { headers: init.headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="clicks-${linkId}.csv"`);
      const lines = (await res.text()).split('\r\n');
      expect(lines[0]).toBe('id,at,country,device,browser,os,referrer,bot');
      expect(lines.at(-1)).toBe('');
      const body = lines.slice(1).join('\r\n');
      expect(body).toContain(',2026-03-10T10:00:00.000Z,,mobile,Safari,iOS,"a,""b""\r\nc",false\r\n');
      expect(body).toContain(`,"'=HYPERLINK(""http://evil.example"")",false`);
      expect(body).toContain(",'-dash.example,false");
    }
  });

  it('streams 5,000 clicks in (at, id) order, page by page, and filters by from/to', async () => {
    await visit('2026-03-10T00:00:00Z');
    const template = sent.pop() as LinkClickEvent;
    const base = Date.parse('2026-03-10T00:00:00Z');
    // Every tenth pair shares a millisecond, so the order of equal times (by id) is exercised too.
    const events = Array.from({ length: 5000 }, (_, i) => ({ ...template, id: newId('clk'), at: base + Math.floor(i / 2) * 1000 }));
    for (let i = 0; i < events.length; i += 1000) await clicks.ingest(events.slice(i, i + 1000));
    const res = await t.request(`/v1/links/${linkId}/clicks`);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let chunks = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks++;
      text += decoder.decode(value, { stream: true });
    }
    expect(chunks).toBeGreaterThanOrEqual(5);
    const rows = text.trim().split('\n').map((l) => JSON.parse(l) as ExportedClick);
    expect(rows).toHaveLength(5000);
    const sorted = [...events].sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
    expect(rows.map((r) => r.id)).toEqual(sorted.map((e) => e.id));

    // A client that goes away after the first chunk: reading stops, and the next export is whole.
    const early = (await t.request(`/v1/links/${linkId}/clicks`)).body!.getReader();
    expect((await early.read()).done).toBe(false);
    await early.cancel();
    const head = await t.request(`/v1/links/${linkId}/clicks?format=csv`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(await head.text()).toBe('');

    const from = new Date(base + 1000 * 1000).toISOString();
    const to = new Date(base + 1500 * 1000).toISOString();
    const part = await t.request(`/v1/links/${linkId}/clicks?${q({ from, to, format: 'ndjson' })}`);
    const partRows = (await part.text()).trim().split('\n').map((l) => JSON.parse(l) as ExportedClick);
    expect(partRows).toHaveLength(1000);
    expect(partRows[0]!.at).toBe(from);
    expect(partRows.at(-1)!.at).toBe(new Date(base + 1499 * 1000).toISOString());
  });

  it('answers an empty export, and a CSV with the header only; purged clicks are gone from it', async () => {
    await visit('2026-01-10T10:00:00Z');
    await consume();
    expect((await (await t.request(`/v1/links/${linkId}/clicks`)).text()).split('\n').filter(Boolean)).toHaveLength(1);
    await purgeAll();
    expect(await (await t.request(`/v1/links/${linkId}/clicks`)).text()).toBe('');
    expect(await (await t.request(`/v1/links/${linkId}/clicks?format=csv`)).text()).toBe('id,at,country,device,browser,os,referrer,bot\r\n');
  });

  it('chooses the format from Accept by q-value, NDJSON on a tie or anything else', () => {
    expect(formatFromAccept(undefined)).toBe('ndjson');
    expect(formatFromAccept('*/*')).toBe('ndjson');
    expect(formatFromAccept('text/csv')).toBe('csv');
    expect(formatFromAccept('application/x-ndjson;q=0.5, text/csv;q=0.9')).toBe('csv');
    expect(formatFromAccept('text/csv;q=0.5, application/x-ndjson')).toBe('ndjson');
    expect(formatFromAccept('text/csv, application/x-ndjson')).toBe('ndjson');
    expect(formatFromAccept('text/csv;q=0')).toBe('ndjson');
  });

  it('quotes CSV cells by RFC 4180 and defuses formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    for (const lead of ['=', '+', '-', '@', '\t', '\r']) expect(csvCell(`${lead}1`).replace(/^"/, '')).toMatch(/^'/);
    expect(csvCell('=1,2')).toBe(`"'=1,2"`);
  });
});

describe('orphan visits', () => {
  const range = q({ from: '2026-03-10T00:00:00Z', to: '2026-03-11T00:00:00Z' });

  beforeEach(async () => {
    t.clock.now = new Date('2026-03-10T00:00:00Z');
    const res = await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } });
    expect(res.status).toBe(201);
    await visit('2026-03-10T10:00:00Z', 'nope', { host: 'go.example.com' });
    await visit('2026-03-10T10:10:00Z', 'nope', { host: 'go.example.com' });
    await visit('2026-03-10T11:00:00Z', 'wp-admin', { host: 'go.example.com', 'user-agent': SLACK });
    await visit('2026-03-10T11:30:00Z', 'typo', { host: 'localhost:8787' });
    await consume();
  });

  it("answers a workspace's own domain: totals, series and top slugs", async () => {
    const res = await t.request(`/v1/orphans?domain=Go.Example.com&${range}&interval=hour`);
    expect(res.status).toBe(200);
    const s = (await res.json()) as OrphanStats;
    expect(s).toMatchObject({ domain: 'go.example.com', interval: 'hour', tz: 'UTC', totals: { humans: 2, bots: 1 } });
    expect(s.series).toHaveLength(24);
    expect(s.series[10]).toEqual({ start: '2026-03-10T10:00:00+00:00', humans: 2, bots: 0 });
    expect(s.series[11]).toEqual({ start: '2026-03-10T11:00:00+00:00', humans: 0, bots: 1 });
    expect(s.top.slug).toEqual([
      { value: 'nope', humans: 2, bots: 0 },
      { value: 'wp-admin', humans: 0, bots: 1 },
    ]);
  });

  it("never shows a domain's new owner the orphan visits it had before, under its earlier owner", async () => {
    const domains = (await (await t.request('/v1/domains')).json()) as { data: Array<{ id: string }> };
    t.clock.now = new Date('2026-03-10T12:05:00Z');
    expect((await t.request(`/v1/domains/${domains.data[0]!.id}`, { method: 'DELETE' })).status).toBe(204);
    const next = await t.createWorkspace('next owner');
    const res = await t.request('/v1/domains', { method: 'POST', key: next.adminKey, json: { hostname: 'go.example.com' } });
    expect(res.status).toBe(201);
    await visit('2026-03-10T12:10:00Z', 'old-link', { host: 'go.example.com' });
    await visit('2026-03-10T12:40:00Z', 'nope', { host: 'go.example.com', 'user-agent': SLACK });
    await consume();
    t.clock.now = new Date('2026-03-11T00:00:00Z');
    const theirs = await t.request(`/v1/orphans?domain=go.example.com&${range}&interval=hour`, { key: next.adminKey });
    expect(theirs.status).toBe(200);
    const s = (await theirs.json()) as OrphanStats;
    // Series: from 12:15, the first slot after the registration at 12:05; top slugs: from 12:05 exactly.
    expect(s.totals).toEqual({ humans: 0, bots: 1 });
    expect(s.series[10]).toEqual({ start: '2026-03-10T10:00:00+00:00', humans: 0, bots: 0 });
    expect(s.top.slug).toEqual([
      { value: 'nope', humans: 0, bots: 1 },
      { value: 'old-link', humans: 1, bots: 0 },
    ]);
    // The operator still sees every visit of the host.
    const all = (await (await t.request(`/v1/operator/orphans?domain=go.example.com&${range}`, { key: ADMIN_TOKEN })).json()) as OrphanStats;
    expect(all.totals).toEqual({ humans: 3, bots: 2 });
  });

  it("refuses the default domain, another workspace's domain and an unknown one alike for workspaces", async () => {
    const other = await t.createWorkspace('other');
    const theirs = await expectProblem(await t.request(`/v1/orphans?domain=go.example.com&${range}`, { key: other.adminKey }), 400, 'validation');
    const unknown = await expectProblem(await t.request(`/v1/orphans?domain=nobody.example&${range}`, { key: other.adminKey }), 400, 'validation');
    expect({ ...theirs, instance: '' }).toEqual({ ...unknown, instance: '' });
    expect(theirs.errors).toEqual([{ in: 'query', field: 'domain', message: expect.stringMatching(/not a domain of this workspace/) }]);
    const shared = await expectProblem(await t.request(`/v1/orphans?domain=localhost&${range}`), 400, 'validation');
    expect(shared.errors?.[0]).toMatchObject({ field: 'domain', message: expect.stringMatching(/operator/) });
    const missing = await expectProblem(await t.request(`/v1/orphans?${range}`), 400, 'validation');
    expect(missing.errors?.[0]).toMatchObject({ field: 'domain' });
    await expectProblem(await t.request(`/v1/orphans?domain=go.example.com&tz=Nowhere`), 400, 'validation');
  });

  it('shows the operator the orphans of any host, the default domain included; API keys are refused there', async () => {
    const res = await t.request(`/v1/operator/orphans?domain=localhost&${range}&interval=day`, { key: ADMIN_TOKEN });
    expect(res.status).toBe(200);
    const s = (await res.json()) as OrphanStats;
    expect(s).toMatchObject({ domain: 'localhost', totals: { humans: 1, bots: 0 }, top: { slug: [{ value: 'typo', humans: 1, bots: 0 }] } });
    expect(s.series).toEqual([{ start: '2026-03-10T00:00:00+00:00', humans: 1, bots: 0 }]);
    await expectProblem(await t.request(`/v1/operator/orphans?domain=localhost&${range}`), 401, 'unauthorized');
    await expectProblem(await t.request(`/v1/operator/orphans?domain=localhost&${range}`, { key: null }), 401, 'unauthorized');
    await expectProblem(await t.request(`/v1/operator/orphans?${range}`, { key: ADMIN_TOKEN }), 400, 'validation');
  });

  it('counts top slugs only from raw visits still kept, while totals stay', async () => {
    await purgeAll();
    const s = (await (await t.request(`/v1/orphans?domain=go.example.com&${range}`)).json()) as OrphanStats;
    expect(s.totals).toEqual({ humans: 2, bots: 1 });
    expect(s.top.slug).toEqual([]);
  });
});

describe('OpenAPI', () => {
  it('documents every statistics route', async () => {
    const doc = (await (await t.request('/openapi.json', { key: null })).json()) as {
      paths: Record<string, Record<string, { parameters?: Array<{ name: string }>; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, unknown> };
    };
    for (const path of ['/v1/links/{id}/stats', '/v1/stats', '/v1/links/{id}/clicks', '/v1/orphans', '/v1/operator/orphans']) {
      expect(doc.paths[path]?.get, path).toBeDefined();
      expect(Object.keys(doc.paths[path]!.get!.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '500']));
    }
    expect(doc.paths['/v1/links/{id}/stats']!.get!.parameters!.map((p) => p.name)).toEqual(
      expect.arrayContaining(['id', 'from', 'to', 'interval', 'tz', 'top', 'dimensions']),
    );
    for (const name of ['Stats', 'OrphanStats', 'Click', 'StatsTopEntry']) expect(doc.components.schemas).toHaveProperty(name);
  });
});
