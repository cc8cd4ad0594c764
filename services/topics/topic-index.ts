/**
 * Where topic state keeps its topics (TopicStore's port): on the JS heap (`HeapTopicIndex`, state
 * in memory) or in the durable store with only what is not durable yet, and what changed last, on
 * the heap (`StoredTopicIndex`, stored-topic-index.ts). TopicStore owns every rule about versions,
 * history and batches; an index only holds topics and finds them by path or selector.
 *
 * A topic object handed out may be shared: TopicStore changes one in place (value, version, seq)
 * and then calls `changed`, so an index keeps the object it holds current, or holds it from then on.
 */
import type { Selector } from '../../core/selector.ts';
import type { Topic, TopicRecord } from '../../core/topic.ts';

/** A topic as durable state holds it. */
export type LoadedTopic = TopicRecord;

export interface TopicIndex {
  readonly size: number;
  get(path: string): Topic | undefined;
  /** A topic whose path the index does not hold (its `seq` is the batch that created it). */
  add(topic: Topic): void;
  /** A topic the index holds, changed in place (its `seq` is the batch that changed it). */
  changed(topic: Topic): void;
  /** Removes the topic at `path` in batch `seq`. */
  delete(path: string, seq: number): void;
  /** Visits every topic the selector matches, each once. */
  forEachMatching(selector: Selector, visit: (topic: Topic) => void): void;
  /** The same topics as an iterator. */
  matching(selector: Selector): IterableIterator<Topic>;
  /** Every topic, in no particular order, read as the iteration goes: do not change topics while iterating. */
  values(): IterableIterator<Topic>;
}

interface PathNode {
  children: Map<string, PathNode> | null;
  topic: Topic | null;
}

/** Every topic on the heap: a map by path and a tree of path segments, so wildcard selectors walk only the branches they name. */
export class HeapTopicIndex implements TopicIndex {
  private readonly topics = new Map<string, Topic>();
  private readonly root: PathNode = { children: null, topic: null };

  get size(): number {
    return this.topics.size;
  }

  get(path: string): Topic | undefined {
    return this.topics.get(path);
  }

  add(topic: Topic): void {
    this.topics.set(topic.path, topic);
    this.nodeFor(topic.path).topic = topic;
  }

  changed(): void {
    // The object held is the one changed.
  }

  delete(path: string): void {
    if (!this.topics.delete(path)) return;
    this.detach(path);
  }

  forEachMatching(selector: Selector, visit: (topic: Topic) => void): void {
    if (selector.exact) {
      const t = this.topics.get(selector.text);
      if (t) visit(t);
      return;
    }
    this.walk(this.root, selector, 0, visit);
  }

  values(): IterableIterator<Topic> {
    return this.topics.values();
  }

  matching(selector: Selector): IterableIterator<Topic> {
    // On the heap already: an array of references, one walk.
    const out: Topic[] = [];
    this.forEachMatching(selector, (t) => out.push(t));
    return out.values();
  }

  private walk(node: PathNode, sel: Selector, depth: number, visit: (topic: Topic) => void): void {
    if (depth === sel.segments.length) {
      if (sel.descendants) this.visitDescendants(node, visit);
      else if (node.topic) visit(node.topic);
      return;
    }
    if (!node.children) return;
    const s = sel.segments[depth];
    if (s === '*') {
      for (const child of node.children.values()) this.walk(child, sel, depth + 1, visit);
    } else {
      const child = node.children.get(s);
      if (child) this.walk(child, sel, depth + 1, visit);
    }
  }

  private visitDescendants(node: PathNode, visit: (topic: Topic) => void): void {
    if (!node.children) return;
    for (const child of node.children.values()) {
      if (child.topic) visit(child.topic);
      this.visitDescendants(child, visit);
    }
  }

  private nodeFor(path: string): PathNode {
    let node = this.root;
    for (const s of path.split('/')) {
      node.children ??= new Map();
      let child = node.children.get(s);
      if (!child) node.children.set(s, (child = { children: null, topic: null }));
      node = child;
    }
    return node;
  }

  private detach(path: string): void {
    const segments = path.split('/');
    const trail: PathNode[] = [this.root];
    let node = this.root;
    for (const s of segments) {
      const child = node.children?.get(s);
      if (!child) return;
      trail.push(child);
      node = child;
    }
    node.topic = null;
    for (let i = trail.length - 1; i > 0; i--) {
      const n = trail[i];
      if (n.topic || (n.children && n.children.size > 0)) break;
      trail[i - 1].children!.delete(segments[i - 1]);
    }
  }
}
