// The page's first request, sent while the page is still starting: the first look, every device
// and its last hour (getdevicestate?history=1h), to the API base the build wrote into the page
// (config.json's, read first, only in an unbuilt site/ folder). A classic script at the top of
// the page's head: it runs before the rest of the page is parsed and long before the modules are
// evaluated, so the request travels meanwhile. app.js takes both promises (the API base, the
// first look's parsed body) from window.enviromonBoot (and reads again itself when the first
// look failed).
'use strict';
(() => {
  /** An http(s) base URL without trailing slashes, '' for same origin, or null when not usable. */
  function apiBaseFrom(text) {
    const t = text.trim();
    if (t === '') return '';
    try {
      const u = new URL(t, location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href.replace(/\/+$/, '') : null;
    } catch {
      return null;
    }
  }

  /** ?api= when it names an http(s) URL, else the configured base. */
  function withOverride(base) {
    const override = new URLSearchParams(location.search).get('api');
    if (override === null) return base;
    const b = apiBaseFrom(override);
    if (b === null) {
      console.warn('enviromon: ignoring ?api=, not an http(s) URL');
      return base;
    }
    return b;
  }

  /**
   * The API base: the build writes it into the page (<meta name="enviromon-api-base">, above this
   * script), so the first look needs no request before it; an unbuilt site/ folder reads
   * config.json ({"apiBaseUrl": ...}) instead. ?api= names another.
   */
  function loadConfig() {
    const meta = document.querySelector('meta[name="enviromon-api-base"]');
    if (meta) return Promise.resolve(withOverride(apiBaseFrom(meta.content) ?? ''));
    return fetch('config.json', { cache: 'no-store' })
      .then((res) => (res.ok ? res.json() : null))
      .then((cfg) => (cfg && typeof cfg.apiBaseUrl === 'string' ? apiBaseFrom(cfg.apiBaseUrl) ?? '' : ''))
      .catch(() => '') // no config: same origin
      .then(withOverride);
  }

  /** The parsed body of an answer, or an Error naming its status. */
  function bodyOf(res) {
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return res.json();
  }

  const config = loadConfig();
  // The answer's body is parsed here as soon as it is in, while the modules are still on their
  // way: app.js then takes it without another task in between (and the first charts are drawn
  // before the page's next rendering). A failure is app.js's to report (and retry).
  const firstLook = config.then((base) => {
    performance.mark('enviromon:first-look-sent');
    return fetch(`${base}/api/getdevicestate?history=1h`, { cache: 'no-store' });
  }).then(bodyOf);
  firstLook.catch(() => {});
  window.enviromonBoot = Object.freeze({ config, firstLook });
})();
