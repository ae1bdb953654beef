// The voice stream (POST /api/stream): its text goes into the answer like Lobe's, its audio
// segments are decoded and scheduled back to back with Web Audio, strictly in playSequence order.

export class VoicePlayer {
  constructor(onScheduled) {
    this.context = new AudioContext();
    this.onScheduled = onScheduled || (() => {});
    this.next = 0;
    this.ready = new Map(); // playSequence -> AudioBuffer, or null for a segment that failed
    this.pending = [];
    this.at = 0;
    this.sources = [];
    this.seen = new Set();
  }

  /** A segment's audio (base64); it plays after every earlier segment. */
  add(sequence, base64) {
    this.seen.add(sequence);
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const decoding = this.context
      .decodeAudioData(bytes.buffer)
      .then((buffer) => this.settle(sequence, buffer))
      .catch(() => this.settle(sequence, null));
    this.pending.push(decoding);
  }

  /** A segment that will have no audio (tts_error): the ones after it must not wait for it. */
  skip(sequence) {
    this.seen.add(sequence);
    if (!this.ready.has(sequence)) this.settle(sequence, null);
  }

  /** The server counted `total` segments: numbering from 1 shows here if it was so. */
  total(total) {
    if (this.next === 0 && !this.seen.has(0) && this.seen.has(total)) {
      this.next = 1;
      this.drain();
    }
  }

  settle(sequence, buffer) {
    this.ready.set(sequence, buffer);
    this.drain();
  }

  drain() {
    while (this.ready.has(this.next)) {
      const buffer = this.ready.get(this.next);
      this.ready.delete(this.next);
      if (buffer) {
        const source = this.context.createBufferSource();
        source.buffer = buffer;
        source.connect(this.context.destination);
        const start = Math.max(this.context.currentTime + 0.02, this.at);
        source.start(start);
        this.at = start + buffer.duration;
        this.sources.push(source);
        this.onScheduled(this.next);
      }
      this.next += 1;
    }
  }

  stop() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // Already finished.
      }
    }
    this.context.close().catch(() => {});
  }
}
