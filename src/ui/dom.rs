//! Small helpers around web-sys.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

pub fn window() -> web_sys::Window {
    web_sys::window().expect("a window")
}

pub fn document() -> web_sys::Document {
    window().document().expect("a document")
}

/// The part of the URL after `#`.
/// Run `f` in a task of its own, `ms` milliseconds from now (0: after the tasks already queued).
pub fn after(ms: i32, f: impl FnOnce() + 'static) {
    let callback = Closure::once_into_js(f);
    let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), ms);
}

/// Runs `f` before the next frame's layout: what it reads of the layout is that frame's, not a
/// layout forced on its own.
pub fn before_next_frame(f: impl FnOnce() + 'static) {
    let callback = Closure::once_into_js(f);
    let _ = window().request_animation_frame(callback.unchecked_ref());
}

pub fn hash() -> String {
    window().location().hash().unwrap_or_default().trim_start_matches('#').to_string()
}

/// Replace the URL hash without a history entry or a `hashchange` event.
pub fn replace_hash(hash: &str) {
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("#{hash}")));
    }
}

/// Offer `text` as a file download.
pub fn download_text(file_name: &str, mime: &str, text: &str) {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    if let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) {
        if let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) {
            download_url(file_name, &url);
            let _ = web_sys::Url::revoke_object_url(&url);
        }
    }
}

pub fn download_url(file_name: &str, url: &str) {
    if let Ok(a) = document().create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(url);
        a.set_download(file_name);
        a.click();
    }
}

/// Shown by the panic hook: the message and a way back, never a blank page. Written with plain
/// DOM calls because after a panic the wasm instance (and Yew) can no longer run.
pub fn show_panic_panel(message: &str) {
    let doc = document();
    if doc.get_element_by_id("panic-panel").is_some() {
        return;
    }
    let Ok(panel) = doc.create_element("div") else {
        return;
    };
    panel.set_id("panic-panel");
    panel.set_attribute("role", "alert").ok();
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    panel.set_inner_html(&format!(
        "<h2>Something went wrong in this lesson</h2><p>The page stopped because of an internal error. \
         Your parameters are kept in the address bar.</p><pre>{escaped}</pre>\
         <button id=\"panic-reload\">Reload lesson</button>"
    ));
    // A listener, not an inline onclick: the page's Content-Security-Policy allows no inline script.
    if let Ok(Some(button)) = panel.query_selector("#panic-reload") {
        let reload = Closure::<dyn FnMut()>::new(|| {
            let _ = window().location().reload();
        });
        let _ = button.add_event_listener_with_callback("click", reload.as_ref().unchecked_ref());
        reload.forget();
    }
    if let Some(body) = doc.body() {
        let _ = body.append_child(&panel);
    }
}

/// A random seed for the "new seed" button (Math.random is fine: the seed is then in the URL).
pub fn random_seed() -> u64 {
    (js_sys::Math::random() * 1e9) as u64
}

pub fn device_pixel_ratio() -> f64 {
    window().device_pixel_ratio().max(1.0)
}

/// Device pixels per CSS pixel of an element: the screen's ratio times the CSS zoom it sits in
/// (a presenter slide is zoomed to fit the screen), so that a canvas stays sharp when zoomed.
pub fn pixel_ratio_of(el: &web_sys::Element) -> f64 {
    let zoom =
        js_sys::Reflect::get(el, &JsValue::from_str("currentCSSZoom")).ok().and_then(|z| z.as_f64()).filter(|z| *z > 0.0).unwrap_or(1.0);
    device_pixel_ratio() * zoom
}

/// A phone-sized window (the stylesheet's narrow layout starts at the same width).
pub fn is_narrow() -> bool {
    window().inner_width().ok().and_then(|w| w.as_f64()).is_some_and(|w| w <= 800.0)
}

/// Full screen on or off (`f` in presenter mode).
pub fn toggle_fullscreen() {
    request_fullscreen(document().fullscreen_element().is_none());
}

/// Ask for full screen (presenter mode); refusals (headless, iframes) are fine.
pub fn request_fullscreen(on: bool) {
    let doc = document();
    if on {
        if let Some(el) = doc.document_element() {
            let _ = el.request_fullscreen();
        }
    } else if doc.fullscreen_element().is_some() {
        doc.exit_fullscreen();
    }
}

/// Exposed for the browser tests: the last report a lesson received, as JSON.
pub fn publish_report(lesson: &str, json: &str) {
    let w = window();
    let _ = js_sys::Reflect::set(&w, &JsValue::from_str("__rorecLastLesson"), &JsValue::from_str(lesson));
    let _ = js_sys::Reflect::set(&w, &JsValue::from_str("__rorecLastReport"), &JsValue::from_str(json));
}

/// A box that scrolls sideways (a wide formula or table on a narrow screen) must be reachable by
/// keyboard to be scrolled: such boxes get `tabindex="0"` and a name, the others none (a tab stop
/// on every formula would be a trap on a wide screen).
pub fn mark_scrollable_regions() {
    let Ok(boxes) = document().query_selector_all("math[display=\"block\"], .imath, .table-wrap") else {
        return;
    };
    // Every width read first, then every attribute written: reading a width after a write lays
    // the page out again, once per box (a 50 ms task on REINFORCE's page when its report came).
    let measured: Vec<(web_sys::Element, bool)> = (0..boxes.length())
        .filter_map(|i| boxes.item(i).and_then(|n| n.dyn_into::<web_sys::Element>().ok()))
        .map(|el| {
            let scrolls = el.scroll_width() > el.client_width() + 1;
            (el, scrolls)
        })
        .collect();
    for (el, scrolls) in measured {
        if scrolls && !el.has_attribute("tabindex") {
            let _ = el.set_attribute("tabindex", "0");
            if !el.has_attribute("aria-label") {
                // A name needs a role on a span or a div (a math element has its own).
                if el.tag_name() != "math" {
                    let _ = el.set_attribute("role", "group");
                }
                let name = if el.class_name().contains("table-wrap") { "table, scrolls sideways" } else { "formula, scrolls sideways" };
                let _ = el.set_attribute("aria-label", name);
            }
        } else if !scrolls && el.get_attribute("tabindex").as_deref() == Some("0") {
            let _ = el.remove_attribute("tabindex");
        }
    }
}
