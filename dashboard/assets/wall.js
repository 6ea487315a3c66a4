/* Mission Watch wall display: what keeps running in the browser when the server does not.
 *
 * tick (every second): the clocks (on the server's time, so a wall PC with a wrong clock still
 * shows the right time), the "connection lost since" warning when updates stop arriving, and
 * the chime for newly announced incidents. rotate: the close-ups of the top incidents.
 *
 * Nothing here grows with time: a few numbers, cached formatters, and a bounded set of the
 * incident keys already announced. window.missionWatchWall is read by the browser tests.
 */
(function () {
    'use strict';
    var state = {
        lastOk: null, offset: 0, refreshMs: 30000, updated: '', beats: 0, lost: false,
        lostSince: null, restored: null, announced: new Set(), primed: false, chimes: 0,
        audio: null, index: 0, listKey: null
    };
    window.missionWatchWall = state;
    var EASTERN = 'America/New_York';
    var RESTORED_NOTE_MS = 5 * 60 * 1000;
    var formatters = {};

    function formatter(zone, withZone) {
        var key = zone + (withZone ? '|z' : '');
        if (!formatters[key]) {
            var options = {timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23'};
            if (withZone) {
                options.timeZoneName = 'short';
            } else {
                options.weekday = 'short';
            }
            formatters[key] = new Intl.DateTimeFormat('en-US', options);
        }
        return formatters[key];
    }

    function eastern(ms) {
        return formatter(EASTERN, true).format(new Date(ms));
    }

    function chime() {
        try {
            var Context = window.AudioContext || window.webkitAudioContext;
            if (!Context) {
                return;
            }
            if (!state.audio) {
                state.audio = new Context();
            }
            var ctx = state.audio;
            if (ctx.state === 'suspended') {
                ctx.resume();
            }
            var start = ctx.currentTime;
            [880, 660].forEach(function (pitch, i) {
                var osc = ctx.createOscillator();
                var gain = ctx.createGain();
                osc.frequency.value = pitch;
                gain.gain.setValueAtTime(0.0001, start + i * 0.35);
                gain.gain.exponentialRampToValueAtTime(0.3, start + i * 0.35 + 0.03);
                gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.35 + 0.32);
                osc.connect(gain);
                gain.connect(ctx.destination);
                osc.start(start + i * 0.35);
                osc.stop(start + i * 0.35 + 0.34);
            });
            state.chimes += 1;
        } catch (err) {
            /* no audio device: the highlight on the screen still announces it */
        }
    }

    function received(beat, config, now) {
        if (state.lost) {
            state.restored = {from: state.lostSince, at: now};
        }
        state.lastOk = now;
        state.lost = false;
        state.lostSince = null;
        state.beats += 1;
        state.offset = beat.server_ms - now;
        state.refreshMs = beat.refresh_ms;
        state.updated = beat.updated;
        var fresh = (beat['new'] || []).filter(function (key) {
            return !state.announced.has(key);
        });
        if (state.primed && fresh.length && config && config.chime) {
            chime();
        }
        if (state.announced.size > 500) {
            state.announced = new Set();
        }
        fresh.forEach(function (key) { state.announced.add(key); });
        state.primed = true;
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        wall: {
            tick: function (n, beat, config) {
                var ctx = window.dash_clientside.callback_context;
                var now = Date.now();
                var fromBeat = (ctx.triggered || []).some(function (t) {
                    return t.prop_id.indexOf('wall-beat') === 0;
                });
                if (beat && (fromBeat || state.lastOk === null)) {
                    received(beat, config, now);
                }
                var limit = Math.max(2.5 * state.refreshMs, state.refreshMs + 10000);
                var text = '';
                if (state.lastOk !== null && now - state.lastOk > limit) {
                    if (!state.lost) {
                        state.lost = true;
                        state.lostSince = state.lastOk + state.refreshMs;
                    }
                    text = 'CONNECTION LOST since ' + eastern(state.lostSince + state.offset) +
                        ' \u2014 figures are from ' + eastern(state.lastOk + state.offset) +
                        '. Reconnecting by itself.';
                }
                var updated = state.updated;
                if (state.restored && now - state.restored.at < RESTORED_NOTE_MS) {
                    updated += ' \u00b7 reconnected at ' + eastern(state.restored.at + state.offset) +
                        ' (lost since ' + eastern(state.restored.from + state.offset) + ')';
                }
                var clocks = ((config && config.clocks) || []).map(function (zone) {
                    return formatter(zone, false).format(new Date(now + state.offset));
                });
                return clocks.concat([text, !state.lost, updated]);
            },

            rotate: function (n, closeups) {
                var ctx = window.dash_clientside.callback_context;
                var list = closeups || [];
                var key = list.map(function (c) { return c.key; }).join(',');
                var rotated = (ctx.triggered || []).some(function (t) {
                    return t.prop_id.indexOf('wall-rotate') === 0;
                });
                if (key !== state.listKey) {
                    state.listKey = key;       /* new data: start again, new incidents first */
                    state.index = 0;
                } else if (rotated && list.length) {
                    state.index = (state.index + 1) % list.length;
                }
                if (!list.length) {
                    return ['', 'No incident affects missions now', '', '',
                            'wall-closeup-image empty'];
                }
                var item = list[state.index];
                return [item.src, item.title, item.detail,
                        (state.index + 1) + ' / ' + list.length,
                        'wall-closeup-image' + (item['new'] ? ' new' : '')];
            }
        }
    });
}());
