/* Keep Dash's undo history from growing on screens that stay open for days.
 *
 * dash-renderer records every change of a callback input made in the browser (each tick of a
 * dcc.Interval included) in its store's history.past, for the undo/redo buttons of debug mode,
 * and copies that whole list on every change. A wall display ticking every second would hold
 * hundreds of thousands of entries after a week, and each tick would copy them all. Nothing
 * here uses undo, so the list is emptied every few seconds (in place: the renderer makes a new
 * one from it on the next change). window.missionWatchHistoryCap.trimmed counts what went.
 */
(function () {
    'use strict';
    var cap = {trimmed: 0, runs: 0};
    window.missionWatchHistoryCap = cap;
    window.setInterval(function () {
        (window.dash_stores || []).forEach(function (store) {
            var history = store.getState && store.getState().history;
            if (history && Array.isArray(history.past) && history.past.length) {
                cap.trimmed += history.past.length;
                history.past.length = 0;
            }
        });
        cap.runs += 1;
    }, 5000);
}());
