/** Field shapes several modules share: display text, timestamps and list limits. */
import * as z from '../platform/zod.ts';

export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** A UTF-16 surrogate without its pair (`"\ud800"` in JSON): not a character, and not valid UTF-8 once stored. */
export const LONE_SURROGATE = /\p{Cs}/u;

/** CONTROL_CHARS as a JSON Schema character class body, for the documents' patterns. */
const CONTROL_CLASS = '\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029';

/**
 * Human-readable text: trimmed, 1..max characters, no control characters. The document's pattern says as much of
 * it as a pattern can: at least one visible character and no control character (surrounding whitespace is trimmed).
 */
export const PlainText = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((v) => !CONTROL_CHARS.test(v), 'must not contain control characters')
    .refine((v) => !LONE_SURROGATE.test(v), 'must be valid Unicode (no lone surrogates)')
    .openapi({ pattern: `^[^${CONTROL_CLASS}]*[^\\s${CONTROL_CLASS}][^${CONTROL_CLASS}]*$` });

/** A decimal integer query parameter in [min, max]; `0x5`, `1e1` or ` 1` are refused rather than read. */
export const QueryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'must be a decimal integer')
    .transform(Number)
    .pipe(z.number().min(min).max(max))
    .openapi({ type: 'integer', minimum: min, maximum: max });

/** An ISO-8601 date-time with an explicit offset (`Z` or `+02:00`), parsed to a Date. */
/** The last instant an ISO-8601 string with a four-digit year can express; later ones would not round-trip. */
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export const IsoDateTime = z
  .iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone, e.g. 2027-01-31T12:00:00Z' })
  .transform((v) => new Date(v))
  .refine((d) => d.getTime() <= MAX_TIME, 'must be no later than 9999-12-31T23:59:59.999Z')
  // No `type` here: it would replace the generated one, which is ["string", "null"] where a field is nullable.
  .openapi({ format: 'date-time' });

export const Timestamp = z.string().openapi({ format: 'date-time', example: '2026-11-21T12:00:00.000Z' });
