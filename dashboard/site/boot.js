// The page's first requests, sent while the page is still starting: config.json (the API base
// URL), then the first look, every device and its last hour (getdevicestate?history=1h). A
// classic script at the top of the page's head: it runs before the rest of the page is parsed
// and long before the modules are evaluated, so these requests travel meanwhile. app.js takes
// both promises from window.enviromonBoot (and reads again itself when the first look failed).
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

  /** config.json's apiBaseUrl (written by the deployment), unless ?api= names another. */
  async function loadConfig() {
    let base = '';
    try {
      const res = await fetch('config.json', { cache: 'no-store' });
      if (res.ok) {
        const cfg = await res.json();
        if (cfg && typeof cfg.apiBaseUrl === 'string') base = apiBaseFrom(cfg.apiBaseUrl) ?? '';
      }
    } catch {
      /* no config: same origin */
    }
    const override = new URLSearchParams(location.search).get('api');
    if (override !== null) {
      const b = apiBaseFrom(override);
      if (b === null) console.warn('enviromon: ignoring ?api=, not an http(s) URL');
      else base = b;
    }
    return base;
  }

  const config = loadConfig();
  // The answer's body is read by app.js; a failure is app.js's to report (and retry).
  const firstLook = config.then((base) => {
    performance.mark('enviromon:first-look-sent');
    return fetch(`${base}/api/getdevicestate?history=1h`, { cache: 'no-store' });
  });
  firstLook.catch(() => {});
  window.enviromonBoot = Object.freeze({ config, firstLook });
})();
