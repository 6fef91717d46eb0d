// Opens a generated report in headless Chromium and checks what a person would see: the
// summary rows and a heat map whose cells have a real size.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { expect, it } from 'vitest';
import type { CaseResult } from '../../harness/conformance/results.js';
import { htmlReport } from './html.js';
import { junitReport } from './junit.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

it('renders the table and a heat map in Chromium', async () => {
  expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`).toBe(true);
  const results: CaseResult[] = [
    { id: 'moe:load:model=mixtral;layout=fused;dtype=bf16;tp=2;ep=1;placement=linear', status: 'pass', durationMs: 1, replay: 'r' },
    {
      id: 'moe:load:model=dbrx;layout=original;dtype=f32;tp=2;ep=1;placement=linear',
      status: 'fail',
      durationMs: 1,
      replay: 'r',
      failure: { message: 'mismatch', heatmap: Array.from({ length: 4 }, (_, e) => Array.from({ length: 10 }, (_, i) => (e === 2 ? i : 0))) },
    },
  ];
  const dir = await mkdtemp(join(tmpdir(), 'moe-html-'));
  const page = join(dir, 'report.html');
  await writeFile(page, htmlReport(results));
  // Playwright takes the temporary --user-data-dir as the persistent context's folder.
  const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const tab = await browser.newPage();
    await tab.goto(pathToFileURL(page).href);
    expect(await tab.locator('#summary tbody tr').count()).toBe(2);
    expect(await tab.locator('#summary tbody tr.bad').count()).toBe(1);
    const svg = tab.locator('svg.heatmap');
    expect(await svg.count()).toBe(1);
    const box = await svg.boundingBox();
    // 4 × 10 cells of 24 px (small maps get big cells), plus the 1 px border on each side.
    expect(box!.width).toBe(10 * 24 + 2);
    expect(box!.height).toBe(4 * 24 + 2);
    const rects = await svg.locator('rect').evaluateAll((els) => els.map((el) => (el as unknown as { getBBox(): { width: number; height: number } }).getBBox()).map((b) => [b.width, b.height]));
    expect(rects).toHaveLength(40);
    expect(rects.every(([w, h]) => w! > 0 && h! > 0)).toBe(true);

    // The JUnit report is well-formed XML to a real parser, even with hostile text in it.
    const hostile: CaseResult = { ...results[1]!, failure: { message: 'stderr: \u0000\u001b[31m<b>&"\'\uD800 ]]>' } };
    const parsed = await tab.evaluate((xml) => {
      const doc = new (globalThis as unknown as { DOMParser: new () => { parseFromString(s: string, t: string): { getElementsByTagName(n: string): { length: number; item(i: number): { getAttribute(a: string): string | null } | null } } } }).DOMParser().parseFromString(xml, 'application/xml');
      return { errors: doc.getElementsByTagName('parsererror').length, cases: doc.getElementsByTagName('testcase').length, message: doc.getElementsByTagName('failure').item(0)?.getAttribute('message') };
    }, junitReport([results[0]!, hostile]));
    expect(parsed).toEqual({ errors: 0, cases: 2, message: 'stderr: \uFFFD\uFFFD[31m<b>&"\'\uFFFD ]]>' });
  } finally {
    await browser.close();
    await rm(dir, { recursive: true, force: true });
  }
});
