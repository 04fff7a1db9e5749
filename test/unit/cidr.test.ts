import test from 'ava';
import { cidrOverlaps, formatIPv4, networkOf, parseCidr, parseIPv4 } from '../../core/cidr.ts';

test('parseIPv4 / formatIPv4 round-trip and reject bad input', (t) => {
  t.is(formatIPv4(parseIPv4('10.96.0.1')!), '10.96.0.1');
  for (const bad of ['10.96.0', '256.1.1.1', '1.2.3.4.5', 'a.b.c.d', '']) t.is(parseIPv4(bad), undefined, bad);
});

test('parseCidr rejects host bits and bad prefixes', (t) => {
  t.truthy(parseCidr('10.42.0.0/16'));
  t.is(parseCidr('10.42.0.1/16'), undefined);
  t.is(parseCidr('10.42.0.0/33'), undefined);
  t.is(parseCidr('10.42.0.0'), undefined);
});

const overlapTable: [string, string, boolean][] = [
  ['10.42.0.0/16', '10.96.0.0/12', false],
  ['10.96.0.0/16', '10.96.0.0/12', true],
  ['10.0.0.0/8', '10.42.0.0/16', true],
  ['10.0.2.0/24', '10.0.3.0/24', false],
  ['0.0.0.0/0', '192.168.1.0/24', true],
  ['192.168.1.0/24', '192.168.1.128/25', true],
];
for (const [a, b, expected] of overlapTable) {
  test(`cidrOverlaps(${a}, ${b}) is ${expected}`, (t) => {
    t.is(cidrOverlaps(parseCidr(a)!, parseCidr(b)!), expected);
    t.is(cidrOverlaps(parseCidr(b)!, parseCidr(a)!), expected);
  });
}

test('networkOf clears host bits', (t) => {
  t.is(networkOf(parseIPv4('192.0.2.77')!, 24).text, '192.0.2.0/24');
});
