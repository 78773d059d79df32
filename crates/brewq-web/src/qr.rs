//! `GET /api/orders/{id}/qr`: a QR code of the order's page, as SVG drawn by brewq, so that a
//! customer who ordered at a kiosk follows the order on a phone. No service elsewhere sees the
//! id. The address is this shop's, as the browser reached it (its `Host`).

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::error::{AppError, not_found};

/// The QR code of `/orders/{id}` on this shop; 404 for what cannot be an order id, 400 without
/// a well-formed `Host`.
pub async fn order_qr(Path(order_id): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    if !brewq_protocol::ids::is_order_id(&order_id) {
        return Err(not_found(&order_id));
    }
    let origin = origin(&headers).ok_or_else(|| AppError::status(StatusCode::BAD_REQUEST, "no well-formed Host header"))?;
    let code = QrCode::with_error_correction_level(format!("{origin}/orders/{order_id}"), EcLevel::M)
        .map_err(|error| AppError::Unavailable(anyhow::anyhow!("cannot make the QR code: {error}")))?;
    let image = code.render::<svg::Color>().min_dimensions(180, 180).quiet_zone(true).build();
    let response_headers = [
        (header::CONTENT_TYPE, "image/svg+xml"),
        // The image holds the order id: no cache shared with anyone else keeps it.
        (header::CACHE_CONTROL, "private, no-store"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    Ok((response_headers, image).into_response())
}

/// `http://host[:port]` (or `https://` behind a proxy that says so) from the request's
/// headers, if the host is a plain name or address.
pub fn origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty() && host.len() <= 255 && host.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c));
    let https = headers.get("x-forwarded-proto").is_some_and(|proto| proto == "https");
    plain.then(|| format!("{}://{host}", if https { "https" } else { "http" }))
}
