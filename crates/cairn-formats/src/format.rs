//! The [`Format`] enum: the names users type in configs and on the command line.

use std::fmt;
use std::str::FromStr;

use crate::FormatError;

/// A log format this crate can parse. The string names (see [`Format::name`]) are the
/// ones accepted by `FromStr` and printed by `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// AWS Application Load Balancer access log (`aws-alb`).
    AwsAlb,
    /// AWS Network Load Balancer (TLS listener) access log (`aws-nlb`).
    AwsNlb,
    /// AWS Classic Load Balancer access log (`aws-clb`).
    AwsClb,
    /// Amazon S3 server access log (`aws-s3access`).
    AwsS3Access,
    /// CloudFront standard log, W3C with `#Fields` header (`aws-cloudfront`).
    AwsCloudfront,
    /// CloudFront real-time log, field list given in the options (`aws-cloudfront-realtime`).
    AwsCloudfrontRealtime,
    /// VPC flow log, default v2 or header/option-defined custom format (`aws-vpcflow`).
    AwsVpcflow,
    /// CloudTrail records (`aws-cloudtrail`).
    AwsCloudtrail,
    /// AWS WAF web ACL log, one JSON object per line (`aws-waf`).
    AwsWaf,
    /// nginx combined/common access log (`nginx-access`).
    NginxAccess,
    /// Apache combined/common access log (`apache-access`).
    ApacheAccess,
    /// Apache httpd error log (`apache-error`).
    ApacheError,
    /// nginx error log (`nginx-error`).
    NginxError,
    /// Microsoft IIS W3C extended log (`iis`).
    Iis,
    /// JSON lines (`json`).
    Json,
    /// logfmt `key=value` lines (`logfmt`).
    Logfmt,
    /// syslog, RFC 3164 or RFC 5424 (`syslog`).
    Syslog,
    /// Kubernetes CRI container log lines (`cri`).
    Cri,
    /// Docker json-file log lines (`docker`).
    Docker,
    /// Guess the format from the file name and first lines (`auto`).
    Auto,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 20] = [
        Format::AwsAlb,
        Format::AwsNlb,
        Format::AwsClb,
        Format::AwsS3Access,
        Format::AwsCloudfront,
        Format::AwsCloudfrontRealtime,
        Format::AwsVpcflow,
        Format::AwsCloudtrail,
        Format::AwsWaf,
        Format::NginxAccess,
        Format::ApacheAccess,
        Format::ApacheError,
        Format::NginxError,
        Format::Iis,
        Format::Json,
        Format::Logfmt,
        Format::Syslog,
        Format::Cri,
        Format::Docker,
        Format::Auto,
    ];

    /// The format's name as accepted by `FromStr`.
    pub fn name(self) -> &'static str {
        match self {
            Format::AwsAlb => "aws-alb",
            Format::AwsNlb => "aws-nlb",
            Format::AwsClb => "aws-clb",
            Format::AwsS3Access => "aws-s3access",
            Format::AwsCloudfront => "aws-cloudfront",
            Format::AwsCloudfrontRealtime => "aws-cloudfront-realtime",
            Format::AwsVpcflow => "aws-vpcflow",
            Format::AwsCloudtrail => "aws-cloudtrail",
            Format::AwsWaf => "aws-waf",
            Format::NginxAccess => "nginx-access",
            Format::ApacheAccess => "apache-access",
            Format::ApacheError => "apache-error",
            Format::NginxError => "nginx-error",
            Format::Iis => "iis",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Syslog => "syslog",
            Format::Cri => "cri",
            Format::Docker => "docker",
            Format::Auto => "auto",
        }
    }

    /// The `event.dataset` value the parser writes, if it writes one.
    pub fn dataset(self) -> Option<&'static str> {
        Some(match self {
            Format::AwsAlb | Format::AwsNlb | Format::AwsClb => "aws.elb",
            Format::AwsS3Access => "aws.s3access",
            Format::AwsCloudfront | Format::AwsCloudfrontRealtime => "aws.cloudfront_logs",
            Format::AwsVpcflow => "aws.vpcflow",
            Format::AwsCloudtrail => "aws.cloudtrail",
            Format::AwsWaf => "aws.waf",
            Format::NginxAccess => "nginx.access",
            Format::ApacheAccess => "apache.access",
            Format::ApacheError => "apache.error",
            Format::NginxError => "nginx.error",
            Format::Iis => "iis.access",
            Format::Syslog => "system.syslog",
            _ => return None,
        })
    }

    /// Comma-separated list of all valid names (used in error messages).
    pub fn valid_names() -> String {
        Format::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| FormatError::UnknownFormat {
                name: s.to_owned(),
                valid: Format::valid_names(),
            })
    }
}
