import t from 'tap';
import { Emitter } from '../../src/client/emitter.js';

class Events extends Emitter<{ tick: [number]; done: [] }> {
  fire(value: number): void {
    this.emit('tick', value);
  }
}

t.test('on, once and off; off() also removes a once() listener that has not fired', async (t) => {
  const events = new Events();
  const seen: string[] = [];
  const always = (value: number): void => void seen.push(`on ${value}`);
  const first = (value: number): void => void seen.push(`once ${value}`);
  const never = (value: number): void => void seen.push(`removed ${value}`);
  events.on('tick', always).once('tick', first).once('tick', never).off('tick', never);
  events.fire(1);
  events.fire(2);
  events.off('tick', always);
  events.fire(3);
  t.same(seen, ['on 1', 'once 1', 'on 2']);
});
