// Fragments a console written with Relay would hold over clustergraph: a
// refetchable pod row and node card (Relay's Object Identification: every
// Kubernetes object implements Node, and Query.node refetches it), a
// paginated pod list (@connection with first and after), a namespace's
// event log paged backward (@connection with last and before), an alert
// card and a cluster header (refetchable too), a delete that drops the
// record from the store (@deleteRecord), and the query that spreads them. make test runs relay-compiler
// over them against schema.graphqls: a schema change that breaks a Relay
// console breaks the build.
import { graphql } from "relay-runtime";

export const podRow = graphql`
  fragment consolePodRow_pod on Pod @refetchable(queryName: "consolePodRowRefetchQuery") {
    id
    name
    namespace
    phase
    ready
    node {
      ...consoleNodeCard_node
    }
  }
`;

export const nodeCard = graphql`
  fragment consoleNodeCard_node on KubeNode @refetchable(queryName: "consoleNodeCardRefetchQuery") {
    id
    name
    status
  }
`;

export const podList = graphql`
  fragment consolePodList_query on Query
  @argumentDefinitions(
    count: { type: "Int", defaultValue: 20 }
    cursor: { type: "String" }
    namespace: { type: "String" }
  )
  @refetchable(queryName: "consolePodListPaginationQuery") {
    pods(first: $count, after: $cursor, filter: { namespace: $namespace }) @connection(key: "consolePodList_pods") {
      totalCount
      edges {
        node {
          id
          ...consolePodRow_pod
        }
      }
    }
  }
`;

export const podsPage = graphql`
  query consolePodsPageQuery($namespace: String) {
    clusters {
      name
      status {
        state
      }
    }
    ...consolePodList_query @arguments(namespace: $namespace)
  }
`;

export const eventLog = graphql`
  fragment consoleEventLog_namespace on Namespace
  @argumentDefinitions(count: { type: "Int", defaultValue: 20 }, cursor: { type: "String" })
  @refetchable(queryName: "consoleEventLogPaginationQuery") {
    events(last: $count, before: $cursor) @connection(key: "consoleEventLog_events") {
      edges {
        node {
          id
          reason
          message
        }
      }
    }
  }
`;

// Clusters, node pools, alerts and metering records implement Node as
// well: a console refetches them like any object.
export const alertCard = graphql`
  fragment consoleAlertCard_alert on Alert @refetchable(queryName: "consoleAlertCardRefetchQuery") {
    id
    alertName
    status
    severity
    message
    object {
      id
    }
  }
`;

export const clusterHeader = graphql`
  fragment consoleClusterHeader_cluster on Cluster @refetchable(queryName: "consoleClusterHeaderRefetchQuery") {
    id
    name
    status {
      state
    }
    nodePools {
      nodes {
        id
        name
        readyNodeCount
        nodeCount
      }
    }
  }
`;

// A delete removes the object from Relay's store by the deleted id.
export const deletePod = graphql`
  mutation consoleDeletePodMutation($id: ID!) {
    delete(id: $id) {
      deletedId @deleteRecord
      gone
    }
  }
`;
