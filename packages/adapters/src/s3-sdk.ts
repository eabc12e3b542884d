// The parts of the AWS SDK that S3 sources use, as one ES module they import on first use
// (`S3Connection.sdk`). Named re-exports, not `import('@aws-sdk/client-s3')` itself: the
// CLI's bundle keeps the SDK in chunks of its own, and a split bundle gives a dynamic import
// of a CommonJS package nothing but a default export.
export {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
export { Upload } from '@aws-sdk/lib-storage';
