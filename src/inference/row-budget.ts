import { ServiceError } from '../errors';

/**
 * Rows queued or running: past `max`, new work gets queue_full naming `setting`. The registry
 * makes two: one shared by the encoder and decoder batchers (QUEUE_MAX_IMAGES), and one that
 * generations hold for their whole run (GENERATE_QUEUE_MAX_IMAGES). The HTTP app counts
 * request-body bytes held in memory with a third (BODY_QUEUE_MAX_BYTES, unit 'bytes').
 */
export class RowBudget {
  private used = 0;

  constructor(
    readonly max: number,
    readonly setting = 'QUEUE_MAX_IMAGES',
    readonly unit = 'images',
  ) {}

  get inUse(): number {
    return this.used;
  }

  acquire(rows: number): void {
    if (this.used + rows > this.max) {
      throw new ServiceError(
        'queue_full',
        `Server busy: ${this.used} ${this.unit} queued or running, ${rows} more would pass the limit ` +
          `${this.setting} = ${this.max}; retry later`,
        { queued: this.used, requested: rows, limit: this.max, setting: this.setting },
      );
    }
    this.used += rows;
  }

  release(rows: number): void {
    this.used = Math.max(0, this.used - rows);
  }
}
