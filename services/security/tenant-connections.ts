/**
 * Live connections per tenant, so one tenant's connection limit never refuses another tenant.
 * A connection takes a lease when its handshake is authenticated and gives it back exactly once,
 * whichever of the session ending or the socket closing comes first.
 */
export interface ConnectionLease {
  readonly tenant: string;
  release(): void;
}

export class TenantConnections {
  private readonly counts = new Map<string, number>();

  count(tenant: string): number {
    return this.counts.get(tenant) ?? 0;
  }

  /** A lease, or null when the tenant already has `limit` connections. */
  tryAcquire(tenant: string, limit: number): ConnectionLease | null {
    const n = this.count(tenant);
    if (n >= limit) return null;
    this.counts.set(tenant, n + 1);
    let released = false;
    return {
      tenant,
      release: () => {
        if (released) return;
        released = true;
        const left = this.count(tenant) - 1;
        if (left > 0) this.counts.set(tenant, left);
        else this.counts.delete(tenant);
      },
    };
  }
}
