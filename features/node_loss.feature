Feature: Losing a whole controller node keeps quorum and service
  As an operator I need the loss of one controller node, with every pod on it, to leave each
  quorum component with a majority that goes on serving.

  Background:
    Given the lab is up

  @node-loss @failover
  Scenario: Every pod of one controller node is killed
    Given galera has its full membership
    And etcd has its full membership
    And rabbitmq has its full membership
    And a client writes to galera continuously
    And a client writes to etcd continuously
    And a client writes to rabbitmq continuously
    When every pod of node controller-1 is killed
    Then the galera quorum holds
    And the etcd quorum holds
    And the rabbitmq quorum holds
    And the client's writes to galera go on within 30 seconds
    And the client's writes to etcd go on within 30 seconds
    And the client's writes to rabbitmq go on within 30 seconds
    And every member of galera is healthy and agrees on the membership within 240 seconds
    And every member of etcd is healthy and agrees on the membership within 240 seconds
    And every member of rabbitmq is healthy and agrees on the membership within 240 seconds
    And the longest write gap of galera is at most 30 seconds
    And the longest write gap of etcd is at most 30 seconds
    And the longest write gap of rabbitmq is at most 30 seconds
    And every acknowledged write to galera is still there
    And every acknowledged write to etcd is still there
    And every acknowledged write to rabbitmq is still there
