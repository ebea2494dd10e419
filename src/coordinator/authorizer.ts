import { randomUUID } from 'node:crypto';

export interface PublishRequest {
  readonly channel: string;
  readonly key: string;
  readonly ip: string;
}

export type PublishDecision = { readonly accepted: true; readonly streamId: string } | { readonly accepted: false };

/** Decides who may publish. The coordinator client implements it; standalone mode accepts everyone. */
export interface PublishAuthorizer {
  authorize(request: PublishRequest): PublishDecision | Promise<PublishDecision>;
  /** An accepted publisher ended (the coordinator is told with PUBLISH-END). */
  published?(channel: string, streamId: string): void;
}

/** Standalone mode: any key is accepted and every session gets a fresh stream id. */
export class StandaloneAuthorizer implements PublishAuthorizer {
  authorize(): PublishDecision {
    return { accepted: true, streamId: randomUUID() };
  }
}
