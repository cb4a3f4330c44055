/**
 * What a user agent says about a click: device type, browser, OS (bowser, a small MIT parser that runs on every
 * runtime) and whether it is a bot (isbot, a maintained list of crawler and link-preview signatures). HEAD
 * requests are bots by definition: browsers follow links with GET.
 */
import Bowser from 'bowser';
import { isbot } from 'isbot';

export interface Classified {
  device: 'desktop' | 'mobile' | 'tablet' | 'tv' | 'bot' | 'unknown';
  browser: string;
  os: string;
  bot: boolean;
}

const UNKNOWN = 'unknown';

// Parsing a user agent costs tens of microseconds and real traffic repeats a few thousand of them: the answers are
// kept, bounded (the map is emptied when full rather than tracking recency, which costs more than it saves here).
const MEMO_SIZE = 2000;
const memo = new Map<string, Classified>();

export function classify(userAgent: string | null, head: boolean): Classified {
  if (head || !userAgent) return parse(userAgent, head);
  let known = memo.get(userAgent);
  if (!known) {
    if (memo.size >= MEMO_SIZE) memo.clear();
    known = parse(userAgent, false);
    memo.set(userAgent, known);
  }
  return known;
}

function parse(userAgent: string | null, head: boolean): Classified {
  const bot = head || !userAgent || isbot(userAgent);
  if (!userAgent) return { device: 'bot', browser: UNKNOWN, os: UNKNOWN, bot };
  const parsed = Bowser.parse(userAgent);
  const platform = parsed.platform.type;
  const device = bot ? 'bot' : platform === 'desktop' || platform === 'mobile' || platform === 'tablet' || platform === 'tv' ? platform : UNKNOWN;
  return {
    device,
    browser: (parsed.browser.name || UNKNOWN).slice(0, 64),
    os: (parsed.os.name || UNKNOWN).slice(0, 64),
    bot,
  };
}
