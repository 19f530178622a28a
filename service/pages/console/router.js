/* The view and its filters live in the URL: /console/<view>[/<id>]?filter=…, so any view
 * can be bookmarked, reloaded and shared. Links with data-nav change view without
 * reloading; the browser's back and forward buttons work.
 */

const BASE = "/console";
let render = null;

export function current() {
  const rest = location.pathname.slice(BASE.length).replace(/^\/+|\/+$/g, "");
  const parts = rest ? rest.split("/") : [];
  return { view: parts[0] || "", id: parts[1] || "", params: new URLSearchParams(location.search) };
}

/** The console URL of a view, with the parameters that are set. */
export function href(view, id, params) {
  let path = BASE + (view ? "/" + view : "") + (id ? "/" + encodeURIComponent(id) : "");
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? path + "?" + text : path;
}

export function go(url, options) {
  if (options && options.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  if (render) render();
}

export function start(renderView) {
  render = renderView;
  window.addEventListener("popstate", () => render());
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-nav]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    go(link.getAttribute("href"));
  });
  render();
}
