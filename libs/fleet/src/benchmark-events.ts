import { EventEmitter } from 'node:events';

/** Progress of a benchmark run, as `hwopt watch` shows it. */
export interface BenchmarkEvent {
  runId: string;
  nodeName: string;
  gpuUuid: string;
  workload: string;
  event: 'started' | 'trial' | 'finished' | 'failed';
  trials: number;
  gpuSeconds: number;
  detail: string;
  status: string;
  at: Date;
}

export class BenchmarkEvents extends EventEmitter<{ event: [BenchmarkEvent] }> {
  constructor() {
    super();
    // Every `hwopt watch` client adds a listener.
    this.setMaxListeners(1000);
  }

  publish(event: BenchmarkEvent): void {
    this.emit('event', event);
  }
}
