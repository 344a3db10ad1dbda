async (token) => {
    // The Live tab's page side (ui/live.py; the messages: lipsync/live/wire.py). One session per page.
    const live = window.lipsyncLive = Object.assign(window.lipsyncLive || {}, {});
    if (live.stop) live.stop();
    if (!token) return;
    const note = document.getElementById('live-note');
    const say = (text) => { if (note) note.textContent = text; };
    const canvas = document.getElementById('live-canvas');
    const draw = canvas.getContext('2d');
    const stats = live.stats = {sent: 0, rate: 0, received: 0, drawn: 0, late: 0, summary: null, closed: null};

    // Capture: an AudioWorklet hands over 16-bit PCM, MESSAGE_SECONDS at a time, as it is captured.
    const WORKLET = `class Capture extends AudioWorkletProcessor {
        constructor(options) {
            super();
            this.size = options.processorOptions.samples;
            this.buffer = new Int16Array(this.size);
            this.filled = 0;
        }
        process(inputs) {
            const channel = inputs[0] && inputs[0][0];
            if (channel) {
                for (let i = 0; i < channel.length; i++) {
                    this.buffer[this.filled++] = Math.round(Math.max(-1, Math.min(1, channel[i])) * 32767);
                    if (this.filled === this.size) {
                        this.port.postMessage(this.buffer.buffer, [this.buffer.buffer]);
                        this.buffer = new Int16Array(this.size);
                        this.filled = 0;
                    }
                }
            }
            return true;
        }
    }
    registerProcessor('lipsync-capture', Capture);`;
    let stream;
    try {
        stream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1}});
    } catch (error) {
        say('⚠️ The microphone could not be opened (' + error.message + '): allow it for this page, then Start again.');
        return;
    }
    const context = new AudioContext();
    await context.audioWorklet.addModule(URL.createObjectURL(new Blob([WORKLET], {type: 'application/javascript'})));
    const capture = new AudioWorkletNode(context, 'lipsync-capture',
        {processorOptions: {samples: Math.round(context.sampleRate * MESSAGE_SECONDS)}});
    const silent = context.createGain();  // pulls the worklet without playing the microphone
    silent.gain.value = 0;
    context.createMediaStreamSource(stream).connect(capture).connect(silent).connect(context.destination);
    stats.rate = Math.round(context.sampleRate);

    const base = window.location.href.split('#')[0].split('?')[0].replace(/[^/]*$/, '');
    const url = new URL(SOCKET_PATH, base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    say('Connecting…');
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    const waiting = [];  // captured before the socket opened: sent once it has, none lost
    let stopped = false;
    const send = (pcm) => { socket.send(pcm); stats.sent += pcm.byteLength / 2; };
    capture.port.onmessage = (event) => {
        if (stopped) return;
        if (socket.readyState === WebSocket.OPEN) send(event.data); else waiting.push(event.data);
    };
    socket.onopen = () => {
        socket.send(JSON.stringify({token, rate: stats.rate}));
        waiting.splice(0).forEach(send);
    };
    const endCapture = () => {
        capture.port.onmessage = null;
        stream.getTracks().forEach((track) => track.stop());
    };
    live.stop = () => {
        if (stopped) return;
        stopped = true;
        endCapture();
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: 'end'}));  // the rest follows
    };

    // Frames: drawn at their time on the audio clock, JITTER_SECONDS behind the first; late ones start it anew.
    let fps = 25, sampleRate = 16000, clock = null, chain = Promise.resolve();
    const shown = [];
    const schedule = (frame) => {
        const now = context.currentTime;
        if (clock === null || clock + frame.index / fps < now) {
            if (clock !== null) stats.late++;
            clock = now + JITTER_SECONDS - frame.index / fps;
        }
        frame.at = clock + frame.index / fps;
        const playback = document.querySelector('#live-playback input');
        if (playback && playback.checked && frame.sound.length) {
            const buffer = context.createBuffer(1, frame.sound.length, sampleRate);
            const channel = buffer.getChannelData(0);
            for (let i = 0; i < frame.sound.length; i++) channel[i] = frame.sound[i] / 32768;
            const source = context.createBufferSource();
            source.buffer = buffer;
            source.connect(context.destination);
            source.start(frame.at);
        }
        shown.push(frame);
    };
    const image = (bytes) => createImageBitmap(new Blob([bytes], {type: 'image/jpeg'}));
    const read = async (data) => {
        if (typeof data === 'string') {
            const message = JSON.parse(data);
            if (message.type === 'ready') {
                fps = message.fps;
                sampleRate = message.sample_rate;
                canvas.width = message.width;
                canvas.height = message.height;
                say('🎙️ Speak now: the photo follows your voice. Press Stop to end.');
            } else if (message.type === 'end') {
                stats.summary = message;
                say(message.summary);
            }
            return;
        }
        const bytes = new Uint8Array(data);
        if (bytes[0] === 80) {  // "P": the photo
            draw.drawImage(await image(bytes.subarray(1)), 0, 0);
            return;
        }
        const view = new DataView(data);  // "F": index, regions, samples; then each region; then the sound
        const index = view.getUint32(1, true), count = view.getUint16(5, true), samples = view.getUint32(7, true);
        let cursor = 11;
        const regions = [];
        for (let i = 0; i < count; i++) {
            const x = view.getUint16(cursor, true), y = view.getUint16(cursor + 2, true);
            const size = view.getUint32(cursor + 8, true);
            regions.push({x, y, picture: image(bytes.subarray(cursor + 12, cursor + 12 + size))});
            cursor += 12 + size;
        }
        for (const region of regions) region.picture = await region.picture;
        stats.received++;
        schedule({index, regions, sound: new Int16Array(data.slice(cursor, cursor + 2 * samples))});
    };
    let reading = 0;  // messages still being decoded
    socket.onmessage = (event) => {  // read in order
        reading++;
        chain = chain.then(() => read(event.data)).finally(() => { reading--; });
    };
    socket.onclose = (event) => {
        stats.closed = {code: event.code, reason: event.reason};
        stopped = true;
        endCapture();
        if (event.code !== 1000) say('⚠️ ' + (event.reason || 'The live connection was lost: press Start again.'));
    };
    const render = () => {
        const now = context.currentTime;
        while (shown.length && shown[0].at <= now) {  // every due frame's regions, in order: none is skipped
            const frame = shown.shift();
            for (const region of frame.regions) draw.drawImage(region.picture, region.x, region.y);
            stats.drawn++;
            if (live.onDraw) live.onDraw(frame.index, canvas);
        }
        if (stats.closed && !reading && !shown.length) {
            setTimeout(() => context.close(), 1000);  // the last sound played out
            return;
        }
        requestAnimationFrame(render);
    };
    requestAnimationFrame(render);
}
