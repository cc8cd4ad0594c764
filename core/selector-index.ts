/**
 * An index from selectors to the things that hold them (subscriptions, permissions), so the set
 * of holders interested in one topic path is found by walking the path once, not by testing every
 * selector: the cost of a change is O(segments × wildcards), independent of the number of holders.
 */
import type { Selector } from './selector.ts';

interface Node<T> {
  children: Map<string, Node<T>>;
  /** Holders whose selector ends exactly here. */
  exact: Set<T> | null;
  /** Holders whose selector ends here with a trailing '**'. */
  descendants: Set<T> | null;
}

function newNode<T>(): Node<T> {
  return { children: new Map(), exact: null, descendants: null };
}

export class SelectorIndex<T> {
  private readonly root: Node<T> = newNode();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(selector: Selector, holder: T): void {
    let node = this.root;
    for (const s of selector.segments) {
      let next = node.children.get(s);
      if (!next) node.children.set(s, (next = newNode()));
      node = next;
    }
    const set = selector.descendants ? (node.descendants ??= new Set()) : (node.exact ??= new Set());
    if (!set.has(holder)) {
      set.add(holder);
      this.count++;
    }
  }

  remove(selector: Selector, holder: T): void {
    const trail: Node<T>[] = [this.root];
    let node = this.root;
    for (const s of selector.segments) {
      const next = node.children.get(s);
      if (!next) return;
      trail.push(next);
      node = next;
    }
    const set = selector.descendants ? node.descendants : node.exact;
    if (!set?.delete(holder)) return;
    this.count--;
    if (set.size === 0) {
      if (selector.descendants) node.descendants = null;
      else node.exact = null;
    }
    // Prune empty branches so churn in subscriptions does not leak nodes.
    for (let i = trail.length - 1; i > 0; i--) {
      const n = trail[i];
      if (n.children.size > 0 || n.exact || n.descendants) break;
      trail[i - 1].children.delete(selector.segments[i - 1]);
    }
  }

  /** Calls `visit` once per (selector, holder) pair matching the path; a holder with two matching selectors is visited twice. */
  match(path: readonly string[], visit: (holder: T) => void): void {
    this.walk(this.root, path, 0, visit);
  }

  private walk(node: Node<T>, path: readonly string[], depth: number, visit: (holder: T) => void): void {
    if (node.descendants && depth < path.length) for (const h of node.descendants) visit(h);
    if (depth === path.length) {
      if (node.exact) for (const h of node.exact) visit(h);
      return;
    }
    const literal = node.children.get(path[depth]);
    if (literal) this.walk(literal, path, depth + 1, visit);
    const star = node.children.get('*');
    if (star) this.walk(star, path, depth + 1, visit);
  }
}
