//! Auto-mapping suggestions: rank source fields for an unmapped target field by
//! normalised-name similarity and type compatibility. Local, deterministic.

use serde::Serialize;

use crate::schema::{FieldDef, FieldType, Schema};

/// One candidate source for a target field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// Target `Entity.Field`.
    pub target: String,
    /// Source path (or `metafield:ns.key`).
    pub source: String,
    /// Score in 0..=1.
    pub score: f64,
}

/// Splits camelCase, snake_case and dotted names into lower-case words, drops
/// noise words and maps common synonyms so that `PrimaryContactEmail` meets `email`.
pub fn normalise(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
        .into_iter()
        .filter(|w| {
            !matches!(
                w.as_str(),
                "the"
                    | "of"
                    | "id"
                    | "number"
                    | "code"
                    | "set"
                    | "custom"
                    | "v2"
                    | "v3"
                    | "ds"
                    | "items"
            )
        })
        .map(|w| match w.as_str() {
            "zip" | "postal" | "postcode" => "zip".to_owned(),
            "mail" | "email" | "e" => "email".to_owned(),
            "qty" | "quantity" => "quantity".to_owned(),
            "sku" | "item" => "item".to_owned(),
            "address1" | "street" => "street".to_owned(),
            "province" | "state" | "region" => "state".to_owned(),
            "firstname" | "first" | "given" => "first".to_owned(),
            "lastname" | "last" | "family" | "surname" => "last".to_owned(),
            _ => w,
        })
        .collect()
}

fn bigrams(s: &str) -> Vec<(char, char)> {
    let cs: Vec<char> = s.chars().collect();
    cs.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Similarity of two names in 0..=1: word overlap blended with character bigram
/// overlap (Dice), so that both renamings and abbreviations score.
pub fn similarity(a: &str, b: &str) -> f64 {
    let wa = normalise(a);
    let wb = normalise(b);
    if wa.is_empty() || wb.is_empty() {
        return 0.0;
    }
    let common = wa.iter().filter(|w| wb.contains(w)).count() as f64;
    let words = 2.0 * common / (wa.len() + wb.len()) as f64;
    let ja = wa.concat();
    let jb = wb.concat();
    let (ba, bb) = (bigrams(&ja), bigrams(&jb));
    let dice = if ba.is_empty() || bb.is_empty() {
        f64::from(u8::from(ja == jb))
    } else {
        let mut used = vec![false; bb.len()];
        let mut hits = 0usize;
        for g in &ba {
            if let Some(i) = bb.iter().enumerate().position(|(i, h)| !used[i] && h == g) {
                used[i] = true;
                hits += 1;
            }
        }
        2.0 * hits as f64 / (ba.len() + bb.len()) as f64
    };
    (0.6 * words + 0.4 * dice).max(edit_similarity(&ja, &jb))
}

/// 1 - (optimal string alignment distance / longer length): catches typos such
/// as transposed letters that share no bigrams.
fn edit_similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 || n.abs_diff(m) > 8 || n > 64 || m > 64 {
        return 0.0;
    }
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    1.0 - d[n][m] as f64 / n.max(m) as f64
}

/// 1 for the same type, partial for convertible types, 0 for impossible pairs.
fn type_fit(src: FieldType, dst: FieldType) -> f64 {
    use FieldType as F;
    match (src, dst) {
        (a, b) if a == b => 1.0,
        (_, F::String) => 0.7,
        (F::Integer, F::Decimal) | (F::Decimal, F::Integer) => 0.8,
        (F::String, F::Enum) | (F::Boolean, F::Enum) => 0.6,
        (F::Datetime, F::Date) | (F::Date, F::Datetime) | (F::String, F::Datetime) => 0.7,
        (F::Any, _) | (_, F::Any) => 0.5,
        (F::String, F::Decimal | F::Integer) => 0.4,
        _ => 0.0,
    }
}

/// Ranks up to `limit` sources for one target field (`Entity.Field`).
pub fn suggest_for(
    source: &Schema,
    target_entity: &str,
    target_field: &str,
    target: &FieldDef,
    limit: usize,
) -> Vec<Suggestion> {
    let mut cands: Vec<(String, FieldType)> = source
        .leaf_paths()
        .into_iter()
        .map(|(p, f)| (p, f.ty))
        .collect();
    for m in &source.metafields {
        cands.push((format!("metafield:{}.{}", m.namespace, m.key), m.ty));
    }
    let mut out: Vec<Suggestion> = cands
        .into_iter()
        .filter_map(|(path, ty)| {
            let fit = type_fit(ty, target.ty);
            if fit == 0.0 {
                return None;
            }
            // Compare against the last path segment mostly; parents add context.
            let leaf = path
                .rsplit(['.', ':'])
                .next()
                .unwrap_or(&path)
                .trim_end_matches("[]");
            let name = similarity(leaf, target_field).max(0.8 * similarity(&path, target_field));
            let score = name * (0.75 + 0.25 * fit);
            (score >= 0.3).then(|| Suggestion {
                target: format!("{target_entity}.{target_field}"),
                source: path,
                score: (score * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.source.cmp(&b.source))
    });
    out.truncate(limit);
    out
}

/// Suggestions for every target field not in `mapped` (custom fields first).
pub fn suggest_unmapped(
    source: &Schema,
    target: &Schema,
    mapped: &[String],
    per_field: usize,
) -> Vec<Suggestion> {
    let mut out = Vec::new();
    for (ent, _, fields) in target.entities() {
        let mut names: Vec<(&String, &FieldDef)> = fields.iter().collect();
        names.sort_by_key(|(_, f)| !f.custom);
        for (fname, f) in names {
            let t = format!("{ent}.{fname}");
            if mapped.contains(&t) || f.key && !f.required {
                continue;
            }
            out.extend(suggest_for(source, ent, fname, f, per_field));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(
            normalise("PrimaryContactEmail"),
            vec!["primary", "contact", "email"]
        );
        assert_eq!(
            normalise("default_address.zip"),
            vec!["default", "address", "zip"]
        );
        assert!(
            similarity("email", "PrimaryContactEmail") > similarity("phone", "PrimaryContactEmail")
        );
    }

    #[test]
    fn ranks_custom_field_candidates() {
        let mut src = Schema::shopify_document("order").unwrap();
        src.add_metafield(crate::schema::MetafieldDef {
            namespace: "custom".into(),
            key: "gift_message".into(),
            ty: FieldType::String,
        })
        .unwrap();
        let target = FieldDef::of(FieldType::String);
        let s = suggest_for(&src, "SalesOrderHeadersV2", "ZZGiftMessage", &target, 3);
        assert_eq!(s[0].source, "metafield:custom.gift_message");
        let s = suggest_for(&src, "SalesOrderHeadersV2", "Email", &target, 3);
        assert!(s.iter().any(|x| x.source == "email"), "{s:?}");
    }
}
