//! DynamoDB's item size, as documented, for the simulated table.
//!
//! "The total size of an item is the sum of the lengths of its attribute
//! names and values": strings count their UTF-8 bytes, numbers about one
//! byte per two significant digits plus one, booleans and nulls one byte,
//! lists and maps three bytes plus one per element, and the names inside
//! maps count like attribute names
//! (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
//! An item is at most 400 KB (1 KB = 1024 bytes), and a write or a
//! `TransactWriteItems` that would make one larger fails (TransactWriteItems
//! API reference, https://docs.aws.amazon.com/goto/SdkForKotlin/dynamodb-2012-08-10/TransactWriteItems,
//! and TransactionCanceledException, https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/TransactionCanceledException.html).

use serde_json::Value;

/// The most bytes an item may hold.
pub const ITEM_LIMIT: usize = 400 * 1024;

/// The size of one attribute value, its name not counted.
pub fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(s) => s.len(),
        Value::Number(n) => number_size(&n.to_string()),
        Value::Array(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::Object(fields) => {
            3 + fields
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
    }
}

/// Leading and trailing zeroes are not stored; one byte per two
/// significant digits, plus one.
fn number_size(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// The size of an item made of `attributes` (name, value).
pub fn item_size<'a>(attributes: impl IntoIterator<Item = (&'a str, &'a Value)>) -> usize {
    attributes
        .into_iter()
        .map(|(name, v)| name.len() + value_size(v))
        .sum()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_and_values_both_count() {
        let strategy = json!("x".repeat(300_000));
        let service = json!("prod/web");
        assert_eq!(
            item_size([("service", &service), ("strategy", &strategy)]),
            "service".len() + 8 + "strategy".len() + 300_000
        );
    }

    #[test]
    fn numbers_count_their_significant_digits() {
        assert_eq!(value_size(&json!(7)), 2);
        assert_eq!(value_size(&json!(1200)), 2);
        assert_eq!(value_size(&json!(123456)), 4);
        assert_eq!(value_size(&json!(0.5)), 2);
    }

    #[test]
    fn lists_and_maps_add_their_overhead() {
        assert_eq!(value_size(&json!([])), 3);
        assert_eq!(value_size(&json!(["ab", true])), 3 + (1 + 2) + (1 + 1));
        assert_eq!(value_size(&json!({"k": null})), 3 + 1 + 1 + 1);
    }
}
