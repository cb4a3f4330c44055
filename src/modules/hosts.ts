/** Hostname rules shared by links, domains and the redirect: one spelling per name, and hosts that reach hop itself. */

/** DNS treats `example.com.` and `example.com` as one name, and names are case-insensitive: compare them as one. */
export const canonicalHost = (hostname: string) => hostname.toLowerCase().replace(/\.+$/, '');

/**
 * Hosts that reach this very server whatever the configured domains (requests for unknown hosts fall back to the
 * default domain, so a target there would redirect to itself): localhost and its subdomains, the loopback and
 * unspecified addresses in the forms the URL parser normalises them to.
 */
const LOOPBACK =
  /^(?:(?:.+\.)?localhost|127(?:\.\d{1,3}){3}|0\.0\.0\.0|\[::1?\]|\[::ffff:(?:127(?:\.\d{1,3}){3}|7f[0-9a-f]{2}:[0-9a-f]{1,4}|0\.0\.0\.0|0:0)\])$/;

export const isLoopbackHost = (hostname: string) => LOOPBACK.test(canonicalHost(hostname));
