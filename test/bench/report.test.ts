import { describe, expect, it } from 'vitest';
import { bytes, markdownTable, ms, num, times } from '../../bench/lib/markdown.ts';
import { commandLine, replaceSection } from '../../bench/lib/report.ts';
import { escapeXml, formatValue, renderSvg, scale } from '../../bench/lib/svg.ts';

describe('markdown', () => {
  it('renders a table with right-aligned number columns and escaped pipes', () => {
    const t = markdownTable({ headers: ['target', 'msg/s'], rows: [['a|b', '1,000']] });
    expect(t).toBe('| target | msg/s |\n| --- | ---: |\n| a\\|b | 1,000 |');
  });
  it('formats numbers, latencies, ratios and sizes', () => {
    expect(num(1234567)).toBe('1,234,567');
    expect(num(null)).toBe('—');
    expect(num(2.345, 1)).toBe('2.3');
    expect(ms(0.1234)).toBe('0.12');
    expect(ms(45.67)).toBe('45.7');
    expect(ms(456.7)).toBe('457');
    expect(times(0.4234)).toBe('×0.42');
    expect(times(12.34)).toBe('×12.3');
    expect(times(null)).toBe('—');
    expect(bytes(733)).toBe('733 B');
    expect(bytes(13.5 * 1024)).toBe('13.5 KiB');
  });
});

describe('README sections', () => {
  it('replaces the section between markers and keeps the rest', () => {
    const doc = 'intro\n<!-- results:relay -->\nold\n<!-- /results:relay -->\noutro\n';
    expect(replaceSection(doc, 'relay', 'new')).toBe('intro\n<!-- results:relay -->\nnew\n<!-- /results:relay -->\noutro\n');
  });
  it('appends a missing section', () => {
    expect(replaceSection('# B\n', 'sync', 'x')).toBe('# B\n\n<!-- results:sync -->\nx\n<!-- /results:sync -->\n');
  });
  it('quotes command-line arguments that need it', () => {
    expect(commandLine(['relay', '--qos', '0,1'])).toBe('npm run bench -- relay --qos 0,1');
    expect(commandLine(['relay', '--tag', "a b'c"])).toBe(`npm run bench -- relay --tag 'a b'\\''c'`);
  });
});

describe('svg', () => {
  it('escapes XML', () => {
    expect(escapeXml('<a & "b">')).toBe('&lt;a &amp; &quot;b&quot;&gt;');
  });
  it('formats values with three significant digits', () => {
    expect(formatValue(165486)).toBe('165k');
    expect(formatValue(1234567)).toBe('1.23M');
    expect(formatValue(733)).toBe('733');
    expect(formatValue(4.214)).toBe('4.21');
  });
  it('scales linearly and logarithmically', () => {
    expect(scale(50, 100, 200, false)).toBe(100);
    expect(scale(0, 100, 200, false)).toBe(0);
    expect(scale(100, 100, 200, true, 1)).toBe(200);
    expect(scale(10, 100, 200, true, 1)).toBe(100);
  });
  it('renders a well-formed chart with one bar per value and "not run" for missing ones', () => {
    const svg = renderSvg('T <1>', [
      { title: 'p', unit: 'u', groups: [{ label: 'g', bars: [{ series: 'a', value: 10 }, { series: 'b', value: null }] }] },
    ]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('T &lt;1&gt;');
    expect(svg).toContain('not run');
    expect((svg.match(/<rect x="230"/g) ?? []).length).toBe(2);
    // every opened element is closed
    const open = (svg.match(/<(svg|text|title)\b/g) ?? []).length;
    const close = (svg.match(/<\/(svg|text|title)>/g) ?? []).length;
    expect(open).toBe(close);
  });
});
