/**
 * The coordinator's text message format: the message type on the first line, then
 * `Name: value` lines, then optionally an empty line and a body.
 *
 *     PUBLISH-REQUEST
 *     Request-ID: 7
 *     Stream-Channel: news
 *
 * Argument names are case-insensitive (coordinators send both `Request-ID` and `Request-Id`).
 */
export class ControlMessage {
  private readonly args = new Map<string, string>();
  /** Names as first written, for serialisation. */
  private readonly names = new Map<string, string>();

  constructor(
    readonly type: string,
    args: Readonly<Record<string, string>> = {},
    readonly body = '',
  ) {
    for (const [name, value] of Object.entries(args)) this.set(name, value);
  }

  get(name: string): string | undefined {
    return this.args.get(name.toLowerCase());
  }

  set(name: string, value: string): void {
    const key = name.toLowerCase();
    if (!this.names.has(key)) this.names.set(key, name);
    this.args.set(key, value);
  }

  serialize(): string {
    let text = this.type;
    for (const [key, value] of this.args) text += `\n${this.names.get(key)}: ${sanitise(value)}`;
    if (this.body !== '') text += `\n\n${this.body}`;
    return text;
  }

  /** Lenient parser: never throws; a message without a type yields type ''. */
  static parse(raw: string): ControlMessage {
    const lines = raw.split('\n').map((line) => line.replace(/\r$/, ''));
    const message = new ControlMessage((lines[0] ?? '').trim().toUpperCase());
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === '') return new ControlMessage(message.type, message.toRecord(), lines.slice(i + 1).join('\n'));
      const colon = line.indexOf(':');
      if (colon <= 0) continue; // not an argument line: ignored, as the Go server does
      message.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    return message;
  }

  private toRecord(): Record<string, string> {
    const record: Record<string, string> = {};
    for (const [key, value] of this.args) record[this.names.get(key)!] = value;
    return record;
  }
}

/** A value must stay on its line: a newline in it would forge another argument. */
function sanitise(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}
