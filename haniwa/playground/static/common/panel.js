// haniwa playground — the one shape of a panel, and the one way the shell mounts it.
//
// Each panel lives in its own folder (chat/, compare/, kb/, agents/, usage/) and its panel.js
// default-exports definePanel({...}):
//   stylesheets           URLs of the panel's stylesheets, e.g. new URL('chat.css', import.meta.url)
//   mount(el, ctx)        build the panel into its <section> (once)
//   show(el, ctx, args)   optional: bring it up for the route #/<name>/<args…> (on every visit)
// main.js imports the module on the first visit and calls mountPanel(panel, el, ctx), which links the
// stylesheets (once each) and waits for them before mount(), so a panel is never drawn unstyled.
// Styles live in .css files only: the page's CSP allows no inline <style> or style="" markup.

export function definePanel({ stylesheets = [], mount, show }) {
  if (typeof mount !== 'function') throw new TypeError('definePanel() needs mount(el, ctx)');
  return Object.freeze({
    stylesheets: stylesheets.map(String),
    mount,
    show: show || (() => {}),
  });
}

export function isPanel(value) {
  return !!value && Array.isArray(value.stylesheets) && typeof value.mount === 'function'
    && typeof value.show === 'function';
}

const linked = new Map();   // href → Promise that settles when its <link> has loaded

export function linkStylesheet(href) {
  let loaded = linked.get(href);
  if (!loaded) {
    loaded = new Promise((resolve, reject) => {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = href;
      link.addEventListener('load', () => resolve(link));
      link.addEventListener('error', () => {
        link.remove();
        linked.delete(href);   // the next mount tries again
        reject(new Error(`the stylesheet ${href} did not load`));
      });
      document.head.append(link);
    });
    linked.set(href, loaded);
  }
  return loaded;
}

export async function mountPanel(panel, el, ctx) {
  await Promise.all(panel.stylesheets.map(linkStylesheet));
  await panel.mount(el, ctx);
}
