//! Status writes under a shard lease: one `TransactWriteItems` with a
//! `ConditionCheck` on the lease item and the conditional status update, so
//! a replica that lost the shard (however late it wakes up) writes nothing.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::error::from_sdk;
use super::item::{VERSION_ATTRIBUTE, key_value, status_value};
use super::leases::{DynamoLeases, fence_check, still_held};
use super::table::status_condition;
use super::unkeyed::says_item_too_large;
use crate::cloud::{CloudError, DesiredStore, ErrorKind, Fence, StatusWrite};
use crate::rollout::spec::{KEY_ATTRIBUTE, STATUS_ATTRIBUTE};
use crate::rollout::{ServiceKey, Status};

const OP: &str = "dynamodb:TransactWriteItems";

/// Why a cancelled transaction was cancelled, item by item.
enum Cancelled {
    Lease,
    Record,
    Unknown,
}

#[allow(clippy::too_many_arguments)]
pub async fn write_status(
    dynamodb: &Client,
    table: &str,
    leases: &DynamoLeases,
    store: &dyn DesiredStore,
    key: &ServiceKey,
    expected: u64,
    status: &Status,
    fence: &Fence,
) -> Result<StatusWrite, CloudError> {
    let invalid =
        |e: &dyn std::fmt::Display| CloudError::new(ErrorKind::Invalid, OP, e.to_string());
    let value = status_value(status)
        .map_err(|e| CloudError::new(ErrorKind::Other, OP, format!("encoding the status: {e}")))?;
    let next = expected + 1;
    let update = Update::builder()
        .table_name(table)
        .key(KEY_ATTRIBUTE, key_value(key))
        .update_expression("SET #status = :status, #version = :next")
        .condition_expression(status_condition(expected))
        .expression_attribute_names("#key", KEY_ATTRIBUTE)
        .expression_attribute_names("#status", STATUS_ATTRIBUTE)
        .expression_attribute_names("#version", VERSION_ATTRIBUTE)
        .expression_attribute_values(":status", value)
        .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
        .expression_attribute_values(":next", AttributeValue::N(next.to_string()))
        .build()
        .map_err(|e| invalid(&e))?;
    let check = fence_check(leases.table(), fence).map_err(|e| invalid(&e))?;
    let result = dynamodb
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().condition_check(check).build())
        .transact_items(TransactWriteItem::builder().update(update).build())
        // The SDK resends the same token when it retries, and DynamoDB
        // applies a transaction once per token: a lost reply is not a conflict.
        .client_request_token(format!("{:032x}", rand::random::<u128>()))
        .send()
        .await;
    let cancelled = match result {
        Ok(_) => return Ok(StatusWrite::Written { version: next }),
        Err(e) if too_large(&e) => return Ok(StatusWrite::TooLarge),
        Err(e) if conflicted(&e) => return Ok(StatusWrite::Contended),
        Err(e) => match why_cancelled(&e) {
            Some(why) => why,
            None => return Err(from_sdk(OP, e)),
        },
    };
    let lease_lost = match cancelled {
        Cancelled::Lease => true,
        Cancelled::Record => false,
        Cancelled::Unknown => !still_held(leases, fence).await?,
    };
    if lease_lost {
        return Ok(StatusWrite::Fenced);
    }
    match store.get(key).await? {
        Some(_) => Ok(StatusWrite::Conflict),
        None => Ok(StatusWrite::Gone),
    }
}

/// Whether the transaction was refused because the record's item would
/// pass 400 KB with the new status: DynamoDB cancels it with the reason
/// `ValidationError` on the update; the emulator answers a plain
/// `ValidationException` (both documented on TransactionCanceledException:
/// https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/TransactionCanceledException.html).
fn too_large(e: &SdkError<TransactWriteItemsError>) -> bool {
    let Some(service) = e.as_service_error() else {
        return false;
    };
    if says_item_too_large(service.code(), service.message()) {
        return true;
    }
    let TransactWriteItemsError::TransactionCanceledException(t) = service else {
        return false;
    };
    t.cancellation_reasons()
        .iter()
        .any(|r| says_item_too_large(r.code(), r.message()))
}

/// Whether DynamoDB cancelled the transaction because another write on one
/// of its items was in flight (the reason `TransactionConflict`): nothing
/// was written and the same write may be sent again
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling).
fn conflicted(e: &SdkError<TransactWriteItemsError>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(t)) = e.as_service_error()
    else {
        return false;
    };
    let reasons: Vec<&str> = t
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .collect();
    // A failed condition is an answer (lease lost, status moved on), not a collision.
    reasons.contains(&"TransactionConflict") && !reasons.contains(&"ConditionalCheckFailed")
}

/// `None` when the transaction was not cancelled by a condition.
fn why_cancelled(e: &SdkError<TransactWriteItemsError>) -> Option<Cancelled> {
    let Some(TransactWriteItemsError::TransactionCanceledException(t)) = e.as_service_error()
    else {
        return None;
    };
    let failed = |i: usize| {
        t.cancellation_reasons()
            .get(i)
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed")
    };
    let conditional = t
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .all(|c| c == "None" || c == "ConditionalCheckFailed");
    if !conditional {
        // Cancelled for another reason (a conflicting transaction,
        // throughput): not an answer, let the caller retry.
        return None;
    }
    Some(if failed(0) {
        Cancelled::Lease
    } else if failed(1) {
        Cancelled::Record
    } else {
        Cancelled::Unknown
    })
}
