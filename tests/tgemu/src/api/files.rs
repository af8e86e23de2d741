//! `upload.getFile` with Telegram's rules: 4 KiB-aligned offset and limit, limit ≤ 1 MiB
//! dividing 1 MiB, no part crossing a 1 MiB boundary; documents and photos live on one DC
//! (`FILE_MIGRATE_X` elsewhere); file references are per account and may expire. A photo
//! is read one size at a time (`inputPhotoFileLocation` names the size by its type
//! letter). The answer names the bytes; the connection writer generates them into its
//! buffer.

use std::sync::Arc;

use grammers_tl_types as tl;

use super::{Answer, Ctx, FilePart, Reply, args, error};
use crate::content::Content;
use crate::session::GRAMMERS_MAX_BODY;
use crate::world::{ReferenceError, State};

const MIB: i64 = 1024 * 1024;

/// Why a (offset, limit) pair is refused, as Telegram names it.
pub fn check_part(offset: i64, limit: i32, precise: bool) -> Result<(), &'static str> {
    let align = if precise { 1024 } else { 4096 };
    let limit = limit as i64;
    if offset < 0 || offset % align != 0 {
        return Err("OFFSET_INVALID");
    }
    if limit <= 0 || limit % align != 0 || limit > MIB || (!precise && MIB % limit != 0) {
        return Err("LIMIT_INVALID");
    }
    if offset / MIB != (offset + limit - 1) / MIB {
        return Err("LIMIT_INVALID");
    }
    Ok(())
}

/// Bytes of the `rpc_result` + `upload.file` message body around `len` payload bytes.
pub fn answer_body_len(len: usize) -> usize {
    let tl_bytes = if len < 254 { 1 + len } else { 4 + len };
    12 + 12 + tl_bytes.div_ceil(4) * 4
}

/// The bytes a location names and the rules they are served under.
struct Located {
    /// The id file references are issued for (the document or the whole photo).
    reference_id: i64,
    /// The id the bytes are generated from (the document, or the photo size).
    content_id: i64,
    content: Arc<Content>,
    size: u64,
    dc: i32,
    date: i32,
}

/// Looks a document or one photo size up; a wrong access hash is `FILE_ID_INVALID`, as for
/// an unknown id.
fn locate(
    s: &State,
    location: &tl::enums::InputFileLocation,
) -> Result<(Located, Vec<u8>), super::Answer> {
    use tl::enums::InputFileLocation as L;
    match location {
        L::InputDocumentFileLocation(l) => match s.documents.get(&l.id) {
            Some(d) if d.info.access_hash == l.access_hash => Ok((
                Located {
                    reference_id: d.info.id,
                    content_id: d.info.id,
                    content: d.content.clone(),
                    size: d.info.size,
                    dc: d.info.dc,
                    date: d.date,
                },
                l.file_reference.clone(),
            )),
            _ => Err(error(400, "FILE_ID_INVALID")),
        },
        L::InputPhotoFileLocation(l) => {
            let photo = match s.photos.get(&l.id) {
                Some(p) if p.info.access_hash == l.access_hash => p,
                _ => return Err(error(400, "FILE_ID_INVALID")),
            };
            let (size, content) = photo
                .size(&l.thumb_size)
                .ok_or_else(|| error(400, "LOCATION_INVALID"))?;
            Ok((
                Located {
                    reference_id: photo.info.id,
                    content_id: size.content_id,
                    content: content.clone(),
                    size: size.size,
                    dc: photo.info.dc,
                    date: photo.date,
                },
                l.file_reference.clone(),
            ))
        }
        _ => Err(error(400, "LOCATION_INVALID")),
    }
}

pub(super) fn get_file(ctx: &Ctx<'_>, user: i64, query: &[u8]) -> Reply {
    let req: tl::functions::upload::GetFile = args(query)?;
    check_part(req.offset, req.limit, req.precise).map_err(|e| error(400, e))?;
    let (file, reference) = locate(&ctx.world.lock(), &req.location)?;
    if file.dc != ctx.dc {
        return Err(error(303, format!("FILE_MIGRATE_{}", file.dc)));
    }
    let ttl = ctx.faults.file_reference_ttl_value();
    match ctx
        .world
        .check_file_reference(file.reference_id, user, &reference, ttl)
    {
        Ok(()) => {}
        Err(ReferenceError::Expired) => return Err(error(400, "FILE_REFERENCE_EXPIRED")),
        Err(ReferenceError::Invalid) => return Err(error(400, "FILE_REFERENCE_INVALID")),
    }
    let offset = req.offset as u64;
    let len = file.size.saturating_sub(offset).min(req.limit as u64) as usize;
    if ctx.grammers_safe && answer_body_len(len) > GRAMMERS_MAX_BODY {
        // grammers 0.11 asserts on any message body ≥ 1 044 448 bytes and its sender dies;
        // say so instead of killing the client under test.
        return Err(error(400, "EMULATOR_ANSWER_TOO_BIG_FOR_GRAMMERS"));
    }
    ctx.counters
        .update(|c| *c.get_file_by_dc.entry(ctx.dc).or_default() += 1);
    Ok(Answer::File(FilePart {
        doc_id: file.content_id,
        content: file.content,
        offset,
        len,
        mtime: file.date,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_part_rules() {
        assert_eq!(check_part(0, 512 * 1024, false), Ok(()));
        assert_eq!(check_part(512 * 1024, 512 * 1024, false), Ok(()));
        assert_eq!(check_part(MIB, MIB as i32, false), Ok(()));
        assert_eq!(check_part(4096, 4096, false), Ok(()));
        assert_eq!(check_part(100, 4096, false), Err("OFFSET_INVALID"));
        assert_eq!(check_part(-4096, 4096, false), Err("OFFSET_INVALID"));
        assert_eq!(check_part(0, 1000, false), Err("LIMIT_INVALID"));
        assert_eq!(check_part(0, 2 * MIB as i32, false), Err("LIMIT_INVALID"));
        // 3 × 4 KiB does not divide 1 MiB.
        assert_eq!(check_part(0, 12 * 1024, false), Err("LIMIT_INVALID"));
        // Crossing the 1 MiB boundary.
        assert_eq!(
            check_part(768 * 1024, 512 * 1024, false),
            Err("LIMIT_INVALID")
        );
        assert_eq!(check_part(0, 0, false), Err("LIMIT_INVALID"));
    }

    #[test]
    fn a_512k_answer_fits_grammers_and_a_1m_one_does_not() {
        assert!(answer_body_len(512 * 1024) <= GRAMMERS_MAX_BODY);
        assert!(answer_body_len(1024 * 1024) > GRAMMERS_MAX_BODY);
        assert_eq!(answer_body_len(0) % 4, 0);
        assert_eq!(answer_body_len(253) % 4, 0);
    }
}
