//! AWS log parsers (see `shared/formats/AWS-LOGS.md` for the field tables).

pub(crate) mod cloudfront;
pub(crate) mod elb;
pub(crate) mod records;
pub(crate) mod s3access;
pub(crate) mod vpcflow;

pub use cloudfront::{
    REALTIME_FIELDS as CLOUDFRONT_REALTIME_FIELDS, STANDARD_FIELDS as CLOUDFRONT_STANDARD_FIELDS,
};
pub use vpcflow::DEFAULT_FIELDS as VPCFLOW_DEFAULT_FIELDS;
