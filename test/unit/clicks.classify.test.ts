// What a user agent says about a click: device, browser, OS and the bot flag; and the referrer's host only.
import { describe, expect, it } from 'vitest';
import { classify } from '../../src/modules/clicks/clicks.classify.ts';
import { referrerHost } from '../../src/modules/clicks/clicks.events.ts';

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1';
const WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36';

describe('classify', () => {
  it.each([
    [IPHONE, false, { device: 'mobile', browser: 'Safari', os: 'iOS', bot: false }],
    [WINDOWS, false, { device: 'desktop', browser: 'Chrome', os: 'Windows', bot: false }],
    ['Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)', false, { device: 'bot', bot: true }],
    ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', false, { device: 'bot', bot: true }],
    [IPHONE, true, { device: 'bot', os: 'iOS', bot: true }],
    [null, false, { device: 'bot', browser: 'unknown', os: 'unknown', bot: true }],
  ])('%j (HEAD %j)', (ua, head, expected) => {
    expect(classify(ua, head)).toMatchObject(expected);
  });

  it('answers a repeated user agent the same way (from its memo)', () => {
    expect(classify(IPHONE, false)).toBe(classify(IPHONE, false));
    expect(classify(IPHONE, true).bot).toBe(true);
  });
});

describe('referrerHost', () => {
  it.each([
    ['https://News.Example.org:443/path?q=secret#x', 'news.example.org'],
    ['http://user:pw@example.com/', 'example.com'],
    ['android-app://com.slack/', 'com.slack'],
    ['not a url', null],
    ['', null],
    [null, null],
    ['https://exa mple.com/', null],
  ])('%j → %j', (referer, host) => {
    expect(referrerHost(referer)).toBe(host);
  });
});
