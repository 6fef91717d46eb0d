// Opens a generated report in headless Chromium and checks what a person would see: the
// run's facts, the failures counted by diagnosis kind, the summary rows, the diagnosis
// above the evidence, and a heat map whose cells have a real size, with axes and a legend;
// a screenshot of each must show more than a blank box.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { expect, it } from 'vitest';
import type { CaseResult } from '../../harness/conformance/results.js';
import type { RunInfo } from '../../harness/conformance/run-info.js';
import { htmlReport } from './html.js';
import { junitReport } from './junit.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

it('renders the run, the diagnosis above the evidence, and a heat map with axes and a legend in Chromium', async () => {
  expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`).toBe(true);
  const results: CaseResult[] = [
    { id: 'moe:load:model=mixtral;layout=fused;dtype=bf16;tp=2;ep=1;placement=linear', status: 'pass', durationMs: 1, replay: 'r' },
    {
      id: 'moe:load:model=dbrx;layout=original;dtype=f32;tp=2;ep=1;placement=linear',
      status: 'fail',
      durationMs: 1,
      replay: 'r',
      failure: {
        message: 'mismatch',
        heatmap: Array.from({ length: 4 }, (_, e) => Array.from({ length: 10 }, (_, i) => (e === 2 ? i : 0))),
        diagnosis: [{ tensor: 'layers.0.experts.w13', kind: 'gate-up-swapped', detail: 'experts 0–3: gate and up halves swapped (up rows first)' }],
      },
    },
  ];
  const run: RunInfo = { loader: 'python my_loader.py', seed: 42, harnessVersion: '0.1.0', date: '2026-12-07T12:00:00.000Z', machine: 'box' };
  const dir = await mkdtemp(join(tmpdir(), 'moe-html-'));
  const page = join(dir, 'report.html');
  await writeFile(page, htmlReport(results, 'moe-conformance report', run));
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
    // What ran, and the failures by kind, at the top.
    expect(await tab.locator('#run').innerText()).toMatch(/loader\s+python my_loader\.py/);
    expect(await tab.locator('#kinds').innerText()).toBe('1 failed: 1 gate-up-swapped');
    // The diagnosis is visible, above the evidence.
    const diagnosis = tab.locator('ul.diagnosis');
    expect(await diagnosis.innerText()).toContain('gate-up-swapped layers.0.experts.w13: experts 0–3: gate and up halves swapped');
    const evidence = tab.locator('section.failure pre');
    expect((await diagnosis.boundingBox())!.y).toBeLessThan((await evidence.boundingBox())!.y);
    const svg = tab.locator('svg.heatmap');
    expect(await svg.count()).toBe(1);
    const cells = svg.locator('g.cells rect');
    const sizes = await cells.evaluateAll((els) => els.map((el) => (el as unknown as { getBBox(): { width: number; height: number } }).getBBox()).map((b) => [b.width, b.height]));
    // 4 × 10 cells of 40 px (small maps get big cells).
    expect(sizes).toHaveLength(40);
    expect(sizes.every(([w, h]) => w === 40 && h === 40)).toBe(true);
    const box = (await svg.boundingBox())!;
    expect(box.width).toBeGreaterThan(10 * 40);
    expect(box.height).toBeGreaterThan(4 * 40);
    // Axis titles, ticks and a legend with the scale's ends are rendered text.
    const texts = await svg.locator('text').evaluateAll((els) => els.map((el) => (el as unknown as { textContent: string }).textContent));
    expect(texts).toEqual(expect.arrayContaining(['expert', 'row', '0', '3', '8', '0.00', '4.50', '9.00', 'NaN/Inf']));
    const legend = (await svg.locator('g.legend').boundingBox())!;
    expect(legend.width).toBeGreaterThan(20);
    expect(legend.height).toBeGreaterThan(100);
    // Screenshots: the map holds red pixels (the wrong expert's row) and the legend its gradient.
    const reds = async (png: Buffer) => tab.evaluate(async (b64) => {
      const img = new (globalThis as unknown as { Image: new () => { src: string; decode(): Promise<void>; width: number; height: number } }).Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const c = (globalThis as unknown as { document: { createElement(t: string): { width: number; height: number; getContext(k: string): { drawImage(i: unknown, x: number, y: number): void; getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } } } }).document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const g = c.getContext('2d');
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, img.width, img.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i]! > 200 && d[i + 1]! < 80 && d[i + 2]! < 80) n++;
      return n;
    }, png.toString('base64'));
    expect(await reds(await svg.screenshot())).toBeGreaterThan(40 * 40);
    expect(await reds(await svg.locator('g.legend').screenshot())).toBeGreaterThan(16);
    await tab.screenshot({ path: join(dir, 'page.png'), fullPage: true });

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
