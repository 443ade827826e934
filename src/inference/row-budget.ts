import { ServiceError } from '../errors';

/** Rows queued or running, shared by every batcher: past `max`, new work gets queue_full. */
export class RowBudget {
  private used = 0;

  constructor(readonly max: number) {}

  get inUse(): number {
    return this.used;
  }

  acquire(rows: number): void {
    if (this.used + rows > this.max) {
      throw new ServiceError(
        'queue_full',
        `Server busy: ${this.used} images queued or running, ${rows} more would pass the limit ` +
          `of ${this.max}; retry later`,
        { queued: this.used, requested: rows, limit: this.max },
      );
    }
    this.used += rows;
  }

  release(rows: number): void {
    this.used = Math.max(0, this.used - rows);
  }
}
