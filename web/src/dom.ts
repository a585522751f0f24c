/**
 * A tiny element builder: the whole UI is plain DOM. User data only ever goes into the
 * page as text (`textContent`, attribute values), never as HTML, so a message cannot
 * inject markup or script.
 */

export type Child = Node | string | number | null | undefined | false | Child[];

type Handler = (event: Event) => void;

export interface Props {
  class?: string;
  /** data-* attributes. */
  data?: Record<string, string | number | undefined>;
  /** Event listeners by event name (`click`, `keydown` ...). */
  on?: Record<string, Handler>;
  /** Any other attribute; `false`/`undefined`/`null` leave it out, `true` sets it empty. */
  [attribute: string]: unknown;
}

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
    return;
  }
  parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (key === 'on') {
        for (const [type, handler] of Object.entries(value as Record<string, Handler>)) element.addEventListener(type, handler);
      } else if (key === 'data') {
        for (const [name, v] of Object.entries(value as Record<string, string | number | undefined>)) {
          if (v !== undefined) element.dataset[name] = String(v);
        }
      } else if (key === 'class') {
        if (value) element.className = String(value);
      } else if (value === true) {
        element.setAttribute(key, '');
      } else if (value !== false && value !== undefined && value !== null) {
        element.setAttribute(key, String(value));
      }
    }
  }
  append(element, children);
  return element;
}

/** Replaces every child of `parent`. */
export function setChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing`);
  return element as T;
}
