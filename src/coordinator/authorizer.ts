import { randomUUID } from 'node:crypto';

export interface PublishRequest {
  readonly channel: string;
  readonly key: string;
  readonly ip: string;
}

export type PublishDecision =
  | { readonly accepted: true; readonly streamId: string }
  /** `alreadyPublishing`: the channel is taken on another worker thread (not a key problem). */
  | { readonly accepted: false; readonly alreadyPublishing?: boolean };

/** What an authorizer may do to the streams of this server (the coordinator's STREAM-KILL). */
export interface StreamController {
  /** Closes the channel's publisher if its stream id matches (`*`: any). True if one was closed. */
  killPublisher(channel: string, streamId: string): boolean;
  /** Closes every publisher; returns how many. */
  killAllPublishers(): number;
}

/** Decides who may publish (and, where keys are known in advance, who may receive). */
export interface PublishAuthorizer {
  /**
   * `abandoned` aborts when the client leaves before an asynchronous answer: an authorizer that
   * holds the channel for it meanwhile lets go at once (the server frees the channel then too).
   */
  authorize(request: PublishRequest, abandoned?: AbortSignal): PublishDecision | Promise<PublishDecision>;
  /** False when `key` can never be valid for `channel`: the receiver is refused at once. */
  isReceiverKeyValid?(channel: string, key: string): boolean;
  /** True when `key` is a view-only key of `channel` (keys file `"play"`): it views whatever the publisher's key. */
  isPlayKey?(channel: string, key: string): boolean;
  /** An accepted publisher ended (the coordinator is told with PUBLISH-END). */
  published?(channel: string, streamId: string): void;
  /** Called once by the server before it listens. */
  start?(controller: StreamController): void | Promise<void>;
  close?(): void | Promise<void>;
}

export function acceptWithNewStreamId(): PublishDecision {
  return { accepted: true, streamId: randomUUID() };
}

/** Standalone mode without keys: anyone may publish, with any key. */
export class OpenAuthorizer implements PublishAuthorizer {
  authorize(): PublishDecision {
    return acceptWithNewStreamId();
  }
}
