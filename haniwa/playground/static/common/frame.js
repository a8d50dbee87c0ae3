// haniwa playground — paint the newest value of a fast stream once per animation frame.
//
// A model (or the echo backend) can send thousands of deltas a second; writing each one into the page
// and scrolling forces a layout of the whole answer every time, which made a 3,000-token answer take
// 10 s to show instead of 1.3 s. onFrame(paint) returns push(value): the latest value pushed is
// painted at the next frame, earlier ones are skipped. Callers still paint the final value themselves
// when the stream ends (frames do not run in a hidden tab).

export function onFrame(paint) {
  let latest;
  let scheduled = false;
  return (value) => {
    latest = value;
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      paint(latest);
    });
  };
}
